"""Attribution patching through the latent recurrence (interp/interventions/attribution.py), checked against exact
patching.

Models: tiny random CODI models (tiny-llama, tiny-gpt2; LoRA B drawn at random so the adapter matters) and the
shipped model organism pointer3, whose thoughts carry the pointer chase (codi/organisms). Exact effects come from
`interp.patching.patch`, the batched exact engine, over the same cells and pairs.

Bounds, and why. Most cells are 0 in both grids by construction: where the counterfactual does not move the
activation (a question token before the changed number), the estimate and the exact effect are both exactly 0, and
a correlation over all cells rewards that for free. (A cell absent from a pair has no value for that pair in either
grid: a cell's effect averages over the pairs it exists for.) So the chance level is a
permutation null that keeps them: the estimates shuffled among the moved cells only (`_null`, 400 shuffles), and
each test asserts that AtP beats the null's 99.9% quantile of the rank correlation over the moved cells, its best
top-10 overlap, and its 1% quantile of the false-negative rate (cells outside the estimated top 10 whose exact effect
reaches the top-10 cut-off), besides fixed floors. Measured values (2026-12-04, this machine) are in each test's
docstring; the benchmark table (benchmarks/results/attribution.md) reports them for smollm2-135m.
"""

from __future__ import annotations

import copy
from math import comb

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


def _null(est, exact, n=400) -> dict[str, np.ndarray]:
    """`agreement` of `n` estimate grids whose estimates are shuffled among the moved cells (the others stay 0)."""
    rng = np.random.default_rng(0)
    e = est.metrics["estimate"]
    moved = np.isfinite(e) & (est.metrics["moved"] > 0)
    out: dict[str, list] = {"spearman_moved": [], "top_overlap": [], "false_negative_rate": []}
    for _ in range(n):
        g = copy.deepcopy(est)
        g.metrics["estimate"] = e.copy()
        g.metrics["estimate"][moved] = rng.permutation(e[moved])
        a = P.agreement(g, exact)
        for k in out:
            out[k].append(a[k])
    return {k: np.array(v) for k, v in out.items()}


def _effect(exact, layer, position) -> float:
    """The exact effect of one cell: patched logit difference minus the corrupt baseline's, paired, over the pairs
    the cell exists for (patch()'s delta_logit_diff, itself checked in test_patch)."""
    li, pi = exact.layers.index(layer), exact.positions.index(position)
    return float(exact.metrics["delta_logit_diff"][li, pi])


def _check_verification(est, exact, top: int):
    """The built-in verification, recomputed from the full exact sweep: the top cells are the `top` largest
    |estimates|, each verified cell carries patch()'s exact effect, the sample is drawn among the moved cells outside
    the top, and the flagged false negatives are exactly the sampled cells whose |exact| reaches the cut-off."""
    v = est.config["verification"]
    e = est.metrics["estimate"]
    assert v["cutoff"] == pytest.approx(np.sort(np.abs(e[np.isfinite(e)]))[::-1][top - 1])
    assert min(abs(r["estimate"]) for r in v["top"]) == pytest.approx(v["cutoff"])
    tops = {(r["layer"], r["position"]) for r in v["top"]}
    for r in v["top"] + v["sample"]:
        assert r["exact"] == pytest.approx(_effect(exact, r["layer"], r["position"]), abs=1e-4), r
        assert r["estimate"] == e[est.layers.index(r["layer"]), est.positions.index(r["position"])]
    for r in v["sample"]:
        assert (r["layer"], r["position"]) not in tops
        assert est.metrics["moved"][est.layers.index(r["layer"]), est.positions.index(r["position"])] > 0
    flagged = {(r["layer"], r["position"]) for r in v["false_negatives"]}
    assert flagged == {(r["layer"], r["position"]) for r in v["sample"] if abs(r["exact"]) >= v["cutoff"] > 0}
    assert v["false_negative_rate"] == len(flagged) / len(v["sample"])


@pytest.mark.parametrize("base", ["tiny-llama", "tiny-gpt2"])
def test_estimates_rank_like_exact_patching_on_tiny_models(base):
    """Every cell (fed-back thought + all residual layers x every position), 8 changed-number pairs, 360 cells of
    which 244 move. Measured: tiny-llama rho 0.963 over all cells and 0.954 over the moved ones (null 99.9%
    quantile 0.18), top-10 overlap 0.7 (null at most 0.4), FN rate 0.003 (null 1% quantile 0.017); tiny-gpt2
    0.983 / 0.981 (0.18), 0.8 (0.3), 0.006 (0.023)."""
    cm = _model(base)
    clean, corrupt = _pairs(cm)
    est, exact, a = _agree(cm, clean, corrupt)
    null = _null(est, exact)
    assert a["cells"] >= 300 and a["cells_moved"] >= 200, a
    assert a["spearman_moved"] > max(0.5, np.quantile(null["spearman_moved"], 0.999)), a
    assert a["top_overlap"] >= max(0.5, null["top_overlap"].max()), a
    assert a["false_negative_rate"] < np.quantile(null["false_negative_rate"], 0.01), a
    # the grid is a patch()-shaped grid: same layers and positions, heatmap-ready
    assert est.layers == exact.layers and est.positions == exact.positions
    assert est.metrics["estimate"].shape == exact.metrics["logit_diff"].shape
    v = est.config["verification"]
    assert len(v["top"]) == 10 and len(v["sample"]) == 20 and v["cells_moved"] == a["cells_moved"]
    _check_verification(est, exact, 10)


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
    """pointer3 (3 thoughts carry hops 1-3), 16 pairs that differ from hop 1 on; 57 cells, 25 moved. The exact
    effects saturate: every cell on the path of the changed value swings the logit difference by the whole
    clean - corrupt span (17.2-17.8 of 17.46, 15 cells), the 10 other moved cells by at most 0.1. A first-order
    estimate at the corrupt point ranks such cells badly. Measured: rho 0.724 over all cells, but over the moved
    ones 0.460, at the null's 99% quantile (0.456): as a ranking, chance. What AtP does get right: its 10 largest
    estimates are all path cells (chance, drawing 10 of the 25 moved cells: C(15,10) / C(25,10) = 0.0009), and the
    5 path cells it ranks below off-path ones are exactly what the built-in false-negative check flags (the
    positive control of that check)."""
    cm, _ = organisms.load("pointer3")
    clean, corrupt = organisms.pairs("pointer3", 16, seed=0, step=1)
    est, exact, a = _agree(cm.eval(), clean, corrupt)
    b = exact.config["baseline"]
    span = b["logit_diff_clean"] - b["logit_diff_corrupt"]
    assert span > 10, b
    moved = [(layer, p) for li, layer in enumerate(est.layers) for pi, p in enumerate(est.positions)
             if est.metrics["moved"][li, pi] > 0]
    path = {c for c in moved if _effect(exact, *c) > span / 2}
    assert a["cells"] >= 50 and a["cells_moved"] == len(moved) and len(path) >= 10, (a, path)
    assert comb(len(path), 10) / comb(len(moved), 10) < 0.01                  # all-path top 10 is not luck
    v = est.config["verification"]
    assert {(r["layer"], r["position"]) for r in v["top"]} <= path, v["top"]
    assert any(r["position"].startswith("latent_") for r in v["top"])        # the thoughts are on the path
    # every moved cell outside the top 10 is sampled (15 of 20 asked), so the check sees every miss
    assert len(v["sample"]) == len(moved) - 10
    _check_verification(est, exact, 10)
    flagged = {(r["layer"], r["position"]) for r in v["false_negatives"]}
    assert len(flagged) >= 3 and flagged <= path and flagged == set(a["false_negatives"]), (flagged, path)


def test_estimate_is_the_directional_derivative_through_two_latent_steps():
    """The estimate of one cell equals the central finite difference of the metric along (clean - corrupt) at
    that cell (float64 weights, step 1e-2, so the second-order error is ~1e-4 relative; HF's RMSNorm computes in
    float32, which leaves ~1e-8 of noise in the metric, 1e-5 of the differences here): rtol 1e-2. The cell is the first
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
    """metric="answer_logp": the log-probability of the clean answer, estimated and patched exactly. 12 latent
    cells, all moved. Measured: rho 0.989 (the one-sided 0.1% critical value of Spearman's rho at n = 12 is
    about 0.78)."""
    cm = _model("tiny-llama")
    clean, corrupt = _pairs(cm, 4)
    g = P.attribute(cm, clean, corrupt, metric="answer_logp", positions="latents", verify_top=4, progress=False)
    exact = P.patch(cm, clean, corrupt, positions="latents", progress=False)
    a = P.agreement(g, exact)
    assert a["cells"] == a["cells_moved"] == len(g.layers) * len(g.positions) == 12
    assert a["spearman_moved"] > 0.8, a
    assert "clean_logp" in g.metrics and g.config["metric"] == "answer_logp"
    for side in ("clean", "corrupt"):      # the baselines are patch()'s answer log-probabilities, not logit diffs
        key = f"clean_logp_{side}"
        assert g.config["baseline"][key] == pytest.approx(exact.config["baseline"][key], abs=1e-5)
    for r in g.config["verification"]["top"]:
        li, pi = exact.layers.index(r["layer"]), exact.positions.index(r["position"])
        want = exact.metrics["clean_logp"][li, pi] - exact.config["baseline"]["clean_logp_corrupt"]
        assert r["exact"] == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="metric='prob'"):
        P.attribute(cm, clean, corrupt, metric="prob")
    with pytest.raises(ValueError, match="verify_top=-1"):
        P.attribute(cm, clean, corrupt, verify_top=-1)
    with pytest.raises(ValueError, match="seed=-1: must be an integer >= 0"):
        P.attribute(cm, clean, corrupt, seed=-1)
    with pytest.raises(ValueError, match="takes an attribute\\(\\) grid and a patch\\(\\) grid"):
        P.agreement(exact, g)


def test_a_cell_one_sample_lacks_is_left_alone():
    """Pair 0's clean question is 3 tokens shorter than its corrupt one: at the question positions only the
    corrupt sample has, exact patching leaves pair 0 alone, so neither grid has a value for it there (NaN), and
    the cell's estimate, exact effect and `moved` are pair 1's alone (its questions have equal lengths)."""
    cm = _model("tiny-llama")
    clean = [{"question": "Tom has 3 eggs.", "answer": "7"},
             {"question": "Tom has 12 eggs and 5 more.", "answer": "17"}]
    corrupt = [{"question": "Tom has 3 eggs and 1.", "answer": "8"},
               {"question": "Tom has 19 eggs and 5 more.", "answer": "24"}]
    kw = dict(layers=[1, 2], positions="question", progress=False)
    g = P.attribute(cm, clean, corrupt, verify_top=0, **kw)
    exact = P.patch(cm, clean, corrupt, **kw)
    bc, bk = pair_batches(cm, clean, corrupt)
    vc, vk = baseline(cm, bc, [], "question").plan, baseline(cm, bk, [], "question").plan
    m_k = baseline(cm, bk, [], "question").scores["logit_diff"].numpy()
    only_k = [p for i, p in enumerate(vk.labels) if vk.valid[0, i] and not vc.valid[0, vc.labels.index(p)]]
    assert len(only_k) == 3, only_k
    for p in only_k:
        pi = g.positions.index(p)
        assert np.all(np.isnan(g.scores[:, pi, 0])), g.scores[:, pi, 0]        # no estimate for pair 0
        assert np.all(np.isnan(exact.scores[:, pi, 0])), exact.scores[:, pi, 0]  # patch() leaves it out too
        assert np.all(g.metrics["moved"][:, pi] == 1.0)                         # pair 1 alone, and it moves
        np.testing.assert_allclose(g.metrics["estimate"][:, pi], g.scores[:, pi, 1] - m_k[1], atol=1e-5)
        np.testing.assert_allclose(exact.metrics["delta_logit_diff"][:, pi], exact.scores[:, pi, 1] - m_k[1],
                                   atol=1e-5)
    for grid in (g, exact):                                                     # both say which cells are partial
        found = [w for w in grid.warnings if w.kind == "partial_cells"]
        assert len(found) == 1 and {(layer, p) for layer in (1, 2) for p in only_k} <= set(found[0].cells)
