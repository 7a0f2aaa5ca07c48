"""interp.behaviour on tiny models: the generated answers are the model's own (same text as CODIModel.generate /
an unpadded Hugging Face generate), the labels equal a direct recomputation from those answers, the counts add up,
activations sit only before the answer, and a one-class result is refused with its counts."""

import doctest
import importlib
import re

import numpy as np
import pandas as pd
import pytest
import torch

import codi
import interp
from interp.behaviour import CODI_POSITIONS, INSTRUCTIONS, BehaviourResult, label_answers, run_behaviour, same_number
from problems.arithmetic import arithmetic

N = 8


def _direct_labels(texts, correct, marker):
    """Independent of codi.batch.extract_answer: the first integer after the last marker, else the last integer."""
    out = []
    for t, c in zip(texts, correct):
        tail = t[t.rfind(marker) + len(marker):] if marker in t else None
        nums = re.findall(r"-?\d+", tail) if tail is not None else []
        num = nums[0] if nums else (re.findall(r"-?\d+", t) or [None])[-1]
        out.append(-1 if num is None else int(int(num) != int(c)))
    return np.array(out)


@pytest.fixture(scope="module")
def codi_model():
    torch.manual_seed(0)
    return codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()


def test_codi_behaviour_labels_match_a_direct_recomputation(codi_model):
    res = run_behaviour(codi_model, n=N, seed=3, instruction="lie", max_new_tokens=6)
    probs = arithmetic(N, steps=(2, 3), seed=3)
    texts = [f"{INSTRUCTIONS['lie']}\n{p.question}" for p in probs]
    assert res.samples["text"].tolist() == texts
    gen = codi_model.generate(texts, max_new_tokens=6).texts                  # the model's own answers, one batch
    assert res.samples["generated_text"].tolist() == gen
    np.testing.assert_array_equal(res.labels, _direct_labels(gen, [p.answer for p in probs], "The answer is:"))
    c = res.counts
    assert c["n"] == N and c["false"] + c["true"] + c["no_answer"] == N
    assert c["false"] == int((res.labels == 1).sum()) and c["true"] == int((res.labels == 0).sum())
    # activations only before the answer: question tail, <bot>, every thought, <eot>
    assert res.cache.positions == ["q[-4]", "q[-3]", "q[-2]", "q[-1]", "bot", "latent_0", "latent_1", "latent_2",
                                   "eot"]
    assert len(res.cache) == N and res.cache.valid.all()
    assert res.config["instruction_text"] == INSTRUCTIONS["lie"] and CODI_POSITIONS[-1] == "eot"


def test_plain_behaviour_matches_unpadded_generation():
    m = interp.load_model("tiny-llama")
    res = run_behaviour(m, n=6, seed=1, instruction="none", max_new_tokens=5, batch_size=4)
    probs = arithmetic(6, steps=(2, 3), seed=1)
    for p, text, gen in zip(probs, res.samples["text"], res.samples["generated_text"]):
        prompt = f"{p.question}\nThe answer is:"
        assert text == prompt
        ids = torch.tensor([m.tokenizer(prompt)["input_ids"]])
        ref = m.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5,
                               do_sample=False, pad_token_id=m.tokenizer.eos_token_id)
        assert gen == "The answer is:" + m.tokenizer.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    np.testing.assert_array_equal(res.labels, _direct_labels(res.samples["generated_text"], [p.answer for p in probs],
                                                             "The answer is:"))
    assert res.cache.positions == [f"prompt[-{k}]" for k in range(8, 0, -1)]
    assert res.cache.samples["generated_text"].tolist() == res.samples["generated_text"].tolist()


def test_a_finished_plain_run_is_reopened(tmp_path):
    """The demo's second run: the same prompts and token budget in the same folder give the same answers and the
    store is reopened, not rewritten; another token budget is a new run (a new folder here)."""
    m = interp.load_model("tiny-llama")
    a = run_behaviour(m, n=6, seed=2, instruction="lie", max_new_tokens=4, out=tmp_path / "b")
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "b").iterdir()}
    b = run_behaviour(m, n=6, seed=2, instruction="lie", max_new_tokens=4, out=tmp_path / "b")
    assert b.samples["generated_text"].tolist() == a.samples["generated_text"].tolist() and b.counts == a.counts
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "b").iterdir()} == stamp
    np.testing.assert_array_equal(b.cache.array(), a.cache.array())
    c = run_behaviour(m, n=6, seed=2, instruction="lie", max_new_tokens=5, out=tmp_path / "c")
    assert c.cache.samples["max_new_tokens"].tolist() == [5] * 6


def test_label_answers_and_numbers():
    stated, y = label_answers(["The answer is: 12 apples", "The answer is: 1,200", "I think 7", "nothing"],
                              ["12", "1200", "8", "3"])
    assert stated == ["12", "1200", "7", ""] and y.tolist() == [0, 0, 1, -1]
    assert same_number("3", "3.0") and not same_number("x", "3")
    with pytest.raises(ValueError, match="must give one per generated text"):
        label_answers(["a"], ["1", "2"])


def _result(labels):
    labels = np.asarray(labels)
    counts = {"n": len(labels), "false": int((labels == 1).sum()), "true": int((labels == 0).sum()),
              "no_answer": int((labels == -1).sum())}
    return BehaviourResult(cache=None, samples=pd.DataFrame({"label": labels}), counts=counts,
                           config={"instruction": "lie"})


def test_one_class_is_refused_with_the_counts():
    with pytest.raises(ValueError, match=r"\[5 false, 0 true, 1 no answer\]: a probe of the behaviour needs at least "
                                         r"2 samples of each class.*the counts are the finding"):
        _result([1, 1, 1, 1, 1, -1]).require_both_classes()
    with pytest.raises(ValueError, match=r"\[3 false, 1 true, 0 no answer\]"):
        _result([1, 1, 1, 0]).require_both_classes(min_per_class=2)
    ok = _result([1, 0, 1, 0, -1])
    ok.require_both_classes()
    assert ok.answered.tolist() == [True, True, True, True, False]


def test_bad_arguments_are_refused_before_any_work(codi_model):
    with pytest.raises(ValueError, match="n=1: must be an integer >= 2"):
        run_behaviour(codi_model, n=1)
    with pytest.raises(ValueError, match="max_new_tokens=1"):
        run_behaviour(codi_model, n=4, max_new_tokens=1)
    with pytest.raises(TypeError, match="model='str': must be a CODI model or an interp.Model"):
        run_behaviour("smollm2-135m", n=4)


def test_lying_instruction_is_deception_arith_s():
    from probes.tasks.arith import LYING

    assert INSTRUCTIONS["lie"] == LYING[0] and INSTRUCTIONS["none"] == ""


def test_doctests_run():
    assert doctest.testmod(importlib.import_module("interp.behaviour")).failed == 0
