"""Logit lens on cached cells: parity with the model's own logits, with CODI's latent top tokens, and both latent
views (before / after the projection)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import codi
import interp
from interp.codi_cache import codi_cache
from interp.lens import final_norm, logit_lens, unembed

Q = ["Tom has 3 bags of 4 apples. He eats 2. How many are left?", "1 + 2 = ?"]


@pytest.fixture(scope="module")
def cm():
    return codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=4, lora_r=4))


@pytest.fixture(scope="module")
def c(cm):
    return codi_cache(cm, Q, progress=False)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_last_layer_lens_is_the_models_prediction(name):
    m = interp.load_model(name)
    c = interp.cache(m, Q, positions=["last"], progress=False)
    t = logit_lens(c, layer=m.n_layers, position="last", k=5, model=m)
    for b, q in enumerate(Q):
        with torch.inference_mode():
            logits = m.model(**m.tokenizer([q], return_tensors="pt")).logits[0, -1]
        probs = torch.softmax(logits.float()[: len(m.tokenizer)], -1)
        top_p, top_i = probs.topk(5)
        f = t.frame[t.frame["sample"] == b].sort_values("rank")
        assert f["token_id"].tolist() == top_i.tolist()
        assert np.allclose(f["prob"], top_p.numpy(), atol=1e-5)
        assert f["token"].tolist() == [m.tokenizer.decode([i]) for i in top_i.tolist()]


def test_final_norm_is_found():
    assert type(final_norm(interp.load_model("tiny-llama").model)).__name__ == "LlamaRMSNorm"
    gpt2 = interp.load_model("tiny-gpt2").model
    assert final_norm(gpt2) is gpt2.transformer.ln_f


def test_pre_prj_view_equals_codi_latent_top_tokens(cm, c):
    t = logit_lens(c, position=[f"latent_{j}" for j in range(4)], k=3, view="pre_prj")  # cache remembers cm
    with torch.inference_mode():
        run = cm.run(Q)
        ids, probs, _ = cm.latent_top_tokens(run.latents, 3)
    for b in range(2):
        for j in range(4):
            f = t.frame[(t.frame["sample"] == b) & (t.frame["position"] == f"latent_{j}")].sort_values("rank")
            assert f["token_id"].tolist() == ids[b, j].tolist()
            assert np.allclose(f["prob"], probs[b, j].numpy(), atol=1e-5)
            assert (f["layer"] == cm.n_layers).all() and (f["view"] == "pre_prj").all()


def test_post_prj_view_equals_layer_zero_at_the_latent(cm, c):
    """On Llama the fed-back thought IS the layer-0 residual of position latent_j."""
    t = logit_lens(c, layer=0, position="latent_2", k=4, view=["resid", "post_prj"], model=cm)
    assert t.top(0, "latent_2", view="resid") == t.top(0, "latent_2", view="post_prj")
    x = torch.from_numpy(c.extras["latent_post_prj"][:, 2])
    expected = torch.softmax(unembed(cm.model, x)[:, : cm.vocab_size], -1).max(-1).values
    got = t.frame[(t.frame["view"] == "post_prj") & (t.frame["rank"] == 0)].sort_values("sample")["prob"]
    assert np.allclose(got, expected.numpy(), atol=1e-6)


def test_cells_feed_viz_lens(c, cm):
    import viz

    t = logit_lens(c, position=["bot", "latent_0", "latent_1"], k=3, model=cm)
    cells = t.cells(sample=1)
    assert set(cells) == {(layer, p) for layer in c.layers for p in ["bot", "latent_0", "latent_1"]}
    assert all(len(v) == 3 and v[0][1] >= v[1][1] for v in cells.values())
    fig = viz.lens(cells)
    assert list(fig.data[0].x) == ["bot", "latent_0", "latent_1"]


def test_lens_on_a_model_with_prompts(cm):
    t = logit_lens(cm, layer=2, position="eot", k=2, prompts=Q)
    assert len(t.frame) == 4 and set(t.frame["position"]) == {"eot"}


def test_bad_lens_requests(c, cm):
    with pytest.raises(ValueError, match="only for latent positions"):
        logit_lens(c, position="bot", view="pre_prj", model=cm)
    with pytest.raises(ValueError, match="choose from"):
        logit_lens(c, position="bot", view="tuned", model=cm)
    plain = interp.cache(interp.load_model("tiny-llama"), Q, progress=False)
    with pytest.raises(ValueError, match="needs a CODI cache"):
        logit_lens(plain, position="tok_0", view="post_prj", model=cm)
