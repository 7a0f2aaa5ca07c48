"""interp.textview against the cache itself: at every valid cell the last visible token is the token whose embedding
the cache holds at layer 0 (tiny-llama: layer 0 is the token embedding, no position term), None exactly where the
cache has no value; the CODI response positions see the response tokens; and a prompt-only label makes
probes.text_baseline fire `label_in_text` on real caches."""

import doctest
import importlib

import numpy as np
import pytest
import torch

import codi
import interp
import probes
from interp.textview import visible_tokens


def _check_layer0(cache, vis, tokenizer, embed):
    """Layer 0 at each valid cell == the embedding of the last visible token there; returns the cells checked."""
    a = cache.array(layers=[0])[:, 0]                                   # [sample, position, d]
    checked = 0
    for i, row in enumerate(vis):
        for j, toks in enumerate(row):
            assert (toks is not None) == bool(cache.valid[i, j])
            if toks is None:
                continue
            tid = tokenizer.convert_tokens_to_ids(toks[-1])
            np.testing.assert_allclose(a[i, j], embed[tid], atol=1e-5)
            checked += 1
    return checked


def test_plain_cache_last_visible_token_is_the_cached_one():
    m = interp.load_model("tiny-llama")
    prompts = ["The capital of France is", "Two plus two", "x"]
    c = interp.cache(m, prompts, layers=[0], positions=["tok_0", "tok_3", "last", "prompt[-2]"], progress=False)
    vis = visible_tokens(c, m)
    embed = m.model.get_input_embeddings().weight.detach().numpy()
    assert _check_layer0(c, vis, m.tokenizer, embed) == int(c.valid.sum())
    full = m.tokenizer.convert_ids_to_tokens(m.tokenizer(prompts[0])["input_ids"])
    assert vis[0][2] == full and vis[0][3] == full[:-1] and vis[0][0] == full[:1] and vis[2][1] is None


@pytest.mark.filterwarnings("ignore::interp.identity.IdentityWarning")  # layer 0 only: identical across labels
def test_codi_cache_question_and_response_positions():
    torch.manual_seed(0)
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    task = probes.tasks.load("deception-arith", n=6, seed=0)
    c = interp.cache(cm, task, layers=[0], positions=["q_0", "q[-5]", "q[-1]", "bot", "latents", "eot", "response"],
                     progress=False)
    vis = visible_tokens(c, cm)
    embed = cm.model.get_input_embeddings().weight.detach().numpy()
    qs = [p for p in c.positions if p.startswith("q")]
    rs = [p for p in c.positions if p.startswith("resp_")]
    sub = [c.positions.index(p) for p in qs + rs]
    a = c.array(layers=[0])[:, 0]
    for i, row in enumerate(vis):
        for j in sub:
            if row[j] is not None:
                np.testing.assert_allclose(a[i, j], embed[cm.tokenizer.convert_tokens_to_ids(row[j][-1])], atol=1e-5)
        prompt = row[c.positions.index("bot")]
        assert row[c.positions.index("eot")] == prompt == row[c.positions.index("latent_1")]
        assert row[c.positions.index("q[-1]")] == prompt
        resp = [t for t in (row[c.positions.index(p)] for p in rs) if t is not None]
        assert [len(t) for t in resp] == list(range(len(prompt) + 1, len(prompt) + 1 + len(resp)))
        text = cm.tokenizer.convert_tokens_to_string(resp[-1][len(prompt):])
        assert text.strip() == task.samples[i]["response"]
    seen = np.array([[t is not None for t in row] for row in vis])
    np.testing.assert_array_equal(seen, c.valid)


def test_a_foreign_tokenizer_is_refused():
    m, other = interp.load_model("tiny-llama"), interp.load_model("tiny-gpt2")
    c = interp.cache(m, ["one two three four five six", "hi"], layers=[0], positions=["tok_0", "tok_5"],
                     progress=False)
    if [len(x) for x in other.tokenizer(["one two three four five six", "hi"])["input_ids"]] != \
            [len(x) for x in m.tokenizer(["one two three four five six", "hi"])["input_ids"]]:
        with pytest.raises(ValueError, match="cells disagree"):
            visible_tokens(c, other)
    with pytest.raises(TypeError, match="must carry the tokenizer"):
        visible_tokens(c, object())


def test_label_in_the_prompt_fires_the_text_check_on_a_real_cache():
    """deception-arith with the instruction before the question: the honest and lying prompts differ in words, so the
    bag-of-words baseline reads the label at every question position and `label_in_text` fires (tiny-llama's small
    byte-level vocabulary needs ~80 samples for this; smollm2's words give 1.0 at 48)."""
    m = interp.load_model("tiny-llama")
    task = probes.tasks.load("deception-arith", n=80, seed=0)
    c = interp.cache(m, task, layers=[1, 2], positions=["prompt[-2]", "last"], progress=False)
    grid = probes.sweep(c, Cs=(0.1, 1.0, 10.0), folds=4, n_permutations=0, n_bootstrap=200, progress=False)
    tb = probes.text_baseline(grid, visible_tokens(c, m))
    assert (tb.metrics["text_auroc"] >= 0.95).all()
    assert "label_in_text" in [w.kind for w in tb.warnings]


def test_doctests_run():
    assert doctest.testmod(importlib.import_module("interp.textview")).failed == 0
