"""Attribution patching through the latent recurrence (interp/interventions/attribution.py), checked against exact
patching.

Models: tiny random CODI models (tiny-llama, tiny-gpt2; LoRA B drawn at random so the adapter matters) and the
shipped model organism pointer3, whose thoughts carry the pointer chase (codi/organisms). Exact effects come from
`interp.patching.patch`, the batched exact engine, over the same cells and pairs.

Bounds, and why. A rank correlation of 0 is what an estimate unrelated to the exact effects gives; with n >= 50
cells the 99% one-sided quantile of Spearman's rho under that null is about 0.33, so `> 0.4` says the estimates
order the cells, with room for the first-order error the method is known for. Top-10 overlap by chance is about
10 / cells (<= 0.2 here); the bound 0.5 asks that at least half of the ten largest exact effects are found. The
false-negative rate (cells outside the estimated top 10 whose exact effect reaches the top-10 cut-off) is bounded
by 0.2. Measured values (2026-12-02, this machine) are in each test's docstring; the benchmark table
(benchmarks/results/attribution.md) reports them for more pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import codi.organisms as organisms
from codi import data
from codi.config import CODIConfig
from codi.model import CODIModel
from interp import patching as P
from interp.interventions.batch import score
from interp.interventions.engine import INPUT, Edit, baseline, run_cells
from interp.interventions.patch import pair_batches


def _model(base: str, latents: int = 3) -> CODIModel:
    torch.manual_seed(0)
    cm = CODIModel.from_config(CODIConfig(base, num_latents=latents, lora_r=4))
    with torch.no_grad():
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return cm.eval()


def _pairs(cm, n=8):
    clean, corrupt = P.changed_number_pairs(data.arithmetic(4 * n, steps=2, seed=3), cm.tokenizer, seed=0)
    return clean[:n], corrupt[:n]


def _agree(cm, clean, corrupt, **kw):
    est = P.attribute(cm, clean, corrupt, verify_top=10, verify_sample=20, progress=False, **kw)
    exact = P.patch(cm, clean, corrupt, progress=False, **kw)
    return est, exact, P.agreement(est, exact)


@pytest.mark.parametrize("base", ["tiny-llama", "tiny-gpt2"])
def test_estimates_rank_like_exact_patching_on_tiny_models(base):
    """Every cell (fed-back thought + all residual layers x every position), 8 changed-number pairs.
    Measured (360 cells): tiny-llama rho 0.963, top-10 0.7, FN 0.003; tiny-gpt2 rho 0.980, top-10 0.8,
    FN 0.006."""
    cm = _model(base)
    clean, corrupt = _pairs(cm)
    est, exact, a = _agree(cm, clean, corrupt)
    assert a["cells"] >= 300
    assert a["spearman"] > 0.4, a
    assert a["top_overlap"] >= 0.5, a
    assert a["false_negative_rate"] <= 0.2, a
    # the grid is a patch()-shaped grid: same layers and positions, heatmap-ready
    assert est.layers == exact.layers and est.positions == exact.positions
    assert est.metrics["estimate"].shape == exact.metrics["logit_diff"].shape
    # verified cells carry the exact effect of patch() itself
    v = est.config["verification"]
    assert len(v["top"]) == 10 and len(v["sample"]) == 20
    base_k = exact.config["baseline"]["logit_diff_corrupt"]
    for r in v["top"][:3]:
        li, pi = exact.layers.index(r["layer"]), exact.positions.index(r["position"])
        assert r["exact"] == pytest.approx(exact.metrics["logit_diff"][li, pi] - base_k, abs=1e-4)


@pytest.mark.parametrize("base", ["tiny-llama", "tiny-gpt2"])
def test_the_gradient_run_is_the_corrupt_baseline_and_taps_the_prompt_call_only_for_a_prompt_cell(base):
    """AtP runs the model twice: the clean baseline and the corrupt run with gradients, which is also the corrupt
    baseline the verification resumes from (k + 2 calls each). Only latent cells planned: the prompt call is not
    tapped, so the backward pass stops before it; with a question cell planned it is. The latent cells' estimates
    are the same either way, bit for bit: no gradient at a later position flows through the prompt call."""
    cm = _model(base)
    clean, corrupt = _pairs(cm, 4)
    kw = dict(layers=["input", 0, 1, 2], verify_top=0, progress=False)
    calls = []
    hook = cm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        lat = P.attribute(cm, clean, corrupt, positions="latents", **kw)
        n_lat = len(calls)
        both = P.attribute(cm, clean, corrupt, positions=["q_0"] + lat.positions, **kw)
    finally:
        hook.remove()
    k = cm.config.num_latents
    assert n_lat == 2 * (k + 2) and len(calls) - n_lat == 2 * (k + 2)  # clean baseline + corrupt gradient run
    assert both.positions == ["q_0"] + lat.positions
    e = both.metrics["estimate"][:, 1:]
    assert np.isfinite(e).all() and np.array_equal(e, lat.metrics["estimate"])


def test_estimates_on_a_model_organism_whose_thoughts_are_used():
    """pointer3 (3 thoughts carry hops 1-3), 16 pairs that differ from hop 1 on. Exact effects there are large
    and saturating (patching one cell swings the logit difference by ~17), which a first-order estimate
    underrates. Measured (57 cells): rho 0.724, top-10 0.6, FN 0.106."""
    cm, _ = organisms.load("pointer3")
    clean, corrupt = organisms.pairs("pointer3", 16, seed=0, step=1)
    est, exact, a = _agree(cm.eval(), clean, corrupt)
    assert a["cells"] >= 50
    assert a["spearman"] > 0.4, a
    assert a["top_overlap"] >= 0.5, a
    assert a["false_negative_rate"] <= 0.2, a
    # the thoughts matter: some latent cell is among the ten largest estimates
    top = est.config["verification"]["top"]
    assert any(r["position"].startswith("latent_") for r in top), top


def test_estimate_is_the_directional_derivative_through_two_latent_steps():
    """The estimate of one cell equals the central finite difference of the metric along (clean - corrupt) at
    that cell (float64, step 1e-2, so the second-order error is ~1e-4 relative): rtol 1e-2. The cell is the first
    fed-back thought of a 3-thought run, whose effect reaches the answer through attention AND through thoughts
    1 and 2; cutting that recurrence (later thoughts detached) changes the estimate by far more than the
    tolerance, so the test would fail if the gradient did not flow through the fed-back thoughts."""
    cm = _model("tiny-llama").double()
    clean = [{"question": "3 + 4 = ?", "answer": "7"}, {"question": "Tom has 12 eggs and 5 more.", "answer": "17"}]
    corrupt = [{"question": "3 + 5 = ?", "answer": "8"}, {"question": "Tom has 19 eggs and 5 more.", "answer": "24"}]
    g = P.attribute(cm, clean, corrupt, positions="latents", verify_top=0, progress=False)
    bc, bk = pair_batches(cm, clean, corrupt)
    base_k, base_c = baseline(cm, bk, [1], "latents"), baseline(cm, bc, [1], "latents")
    ld_k = base_k.scores["logit_diff"].numpy()
    eps = 1e-2
    for layer, pos in [(INPUT, "latent_0"), (1, "latent_0"), (INPUT, "latent_1")]:
        if layer == INPUT:
            j = int(pos.split("_")[1])
            a_k, a_c = base_k.latent_inputs[:, j], base_c.latent_inputs[:, j]
        else:
            i = base_k.plan.labels.index(pos)
            a_k, a_c = base_k.resid[layer][:, i], base_c.resid[layer][:, i]
        s = run_cells(cm, bk, [[Edit(layer, pos, a_k + sgn * eps * (a_c - a_k))] for sgn in (1, -1)], base_k.plan)
        fd = ((s["logit_diff"][0] - s["logit_diff"][1]) / (2 * eps)).numpy()
        est = g.scores[g.layers.index(layer), g.positions.index(pos)] - ld_k
        assert np.all(np.abs(fd) > 1e-4), fd  # a real effect, not two zeros
        np.testing.assert_allclose(est, fd, rtol=1e-2)

    # the same derivative with the recurrence cut after thought 0: a different number
    a_k, a_c = base_k.latent_inputs[:, 0], base_c.latent_inputs[:, 0]
    alpha = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def cut(j, t):
        return a_k + alpha * (a_c - a_k) if j == 0 else t.detach()

    with torch.enable_grad():
        run = cm.run_ids(bk.prompt_ids, bk.prompt_mask, bk.resp_ids, bk.resp_mask, latent_input_fn=cut)
        ld = score(cm, run, bk)["logit_diff"]
        direct = np.array([torch.autograd.grad(ld[i], alpha, retain_graph=True)[0].item() for i in range(2)])
    full = g.scores[0, g.positions.index("latent_0")] - ld_k
    assert np.all(np.abs(full - direct) > 0.05 * np.abs(full)), (full, direct)


def test_answer_logp_metric_and_bad_arguments():
    cm = _model("tiny-llama")
    clean, corrupt = _pairs(cm, 4)
    g = P.attribute(cm, clean, corrupt, metric="answer_logp", positions="latents", verify_top=4, progress=False)
    exact = P.patch(cm, clean, corrupt, positions="latents", progress=False)
    a = P.agreement(g, exact)
    assert a["cells"] == len(g.layers) * len(g.positions)
    assert "clean_logp" in g.metrics and g.config["metric"] == "answer_logp"
    with pytest.raises(ValueError, match="metric='prob'"):
        P.attribute(cm, clean, corrupt, metric="prob")
    with pytest.raises(ValueError, match="verify_top=-1"):
        P.attribute(cm, clean, corrupt, verify_top=-1)
    with pytest.raises(ValueError, match="takes an attribute\\(\\) grid and a patch\\(\\) grid"):
        P.agreement(exact, g)
