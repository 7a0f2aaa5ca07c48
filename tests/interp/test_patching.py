"""Ablation, patching and steering on CODI runs (interp/patching.py, interp/intervene.py, interp/pairs.py).

Tiny random CODI models (tiny-llama, tiny-gpt2; LoRA + projection, 3 latents), short questions so sweeps stay
small. "Exact" below means bitwise equal (torch.equal / ==); batched-vs-cell-by-cell comparisons allow 1e-4
absolute on log-probabilities and logits (float32; replicated batches change matmul blocking, nothing else).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codi import data
from codi.config import CODIConfig
from codi.model import CODIModel
from interp import patching as P
from interp.intervene import INPUT, Edit, baseline, prepare, run_cells
from interp.pairs import changed_number_pairs, replay

PROBS = [
    {"question": "3 + 4 = ?", "answer": "7"},
    {"question": "Tom has 12 eggs. He eats 5.", "answer": "7"},
    {"question": "9 - 2 * 3 = ?", "answer": "3"},
]
CLEAN = [
    {"question": "3 + 4 = ?", "answer": "7"},
    {"question": "Tom has 12 eggs and 5 more.", "answer": "17"},
]
CORRUPT = [
    {"question": "3 + 5 = ?", "answer": "8"},
    {"question": "Tom has 19 eggs and 5 more.", "answer": "24"},
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is ~50x faster than two on a loaded 2-core machine (no spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(base: str) -> CODIModel:
    torch.manual_seed(0)
    cm = CODIModel.from_config(CODIConfig(base, num_latents=3, lora_r=4))
    with torch.no_grad():  # LoRA B starts at zero; give the adapter an effect so the test covers peft too
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return cm.eval()


@pytest.fixture(scope="module")
def llama() -> CODIModel:
    return _model("tiny-llama")


@pytest.fixture(scope="module")
def gpt2() -> CODIModel:
    return _model("tiny-gpt2")


def _qa(probs):
    return [p["question"] for p in probs], [p["answer"] for p in probs]


def test_plan_matches_hf_hidden_states(llama):
    """Residuals recorded at CODI labels equal HF hidden_states of the right call and column (0..n-1)."""
    b = prepare(llama, *_qa(PROBS))
    base = baseline(llama, b, layers=[0, 1, 2], positions="all")
    run = llama.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_hidden_states=True)
    plan = base.plan
    for p, label in enumerate(plan.labels):
        for s in range(len(b)):
            if not plan.valid[s, p]:
                continue
            for layer in (0, 1):
                want = run.hidden_states[plan.call[p]][layer][s, plan.col[s, p]]
                torch.testing.assert_close(base.resid[layer][s, p], want, rtol=0, atol=1e-6)
    # the last real prompt token of each sample is q[-1], its thought inputs match the run's latent_inputs
    assert plan.labels[:2] == ["q_0", "q_1"] and "bot" in plan.labels and "latent_2" in plan.labels
    torch.testing.assert_close(base.latent_inputs, run.latent_inputs, rtol=0, atol=0)


@pytest.mark.parametrize("cells_per_pass", [1, None])
def test_zero_ablating_unused_cells_changes_nothing(llama, cells_per_pass):
    """The last layer's residual at a question token (not the last) and at the last latent is never read:
    nothing downstream depends on it (no K/V, no fed-back thought). Same for every layer at the last response
    position (its logits predict past the scored response). Scores must be identical."""
    n = llama.n_layers
    b = prepare(llama, *_qa(PROBS[:1]))
    base = baseline(llama, b)
    last_resp = f"resp_{b.resp_ids.shape[1] - 1}"
    groups = [
        [],
        [Edit(n, "q_0")],
        [Edit(n, "q_2")],
        [Edit(n, "latent_2")],
        [Edit(layer, last_resp) for layer in range(n + 1)],
    ]
    s = run_cells(llama, b, groups, base.plan, cells_per_pass=cells_per_pass)
    # cell by cell (same batch as the baseline): bitwise equal. Batched: the replicated batch changes float32
    # rounding of the matmuls (row blocking), so equal within 1e-5.
    for k in ("correct", "answer_logp", "margin"):
        for g in range(len(groups)):
            if cells_per_pass == 1:
                assert torch.equal(s[k][g], base.scores[k]), (k, g)
            else:
                torch.testing.assert_close(s[k][g], base.scores[k], rtol=0, atol=1e-5)
    # ... while ablating a cell the answer does read (the last layer at <bot> feeds thought 0) changes it
    s2 = run_cells(llama, b, [[Edit(n, "bot")]], base.plan)
    assert not torch.equal(s2["answer_logp"][0], base.scores["answer_logp"])


def test_shared_prompt_is_exact(llama):
    """Replaying the baseline's prompt call (KV cache + last hidden) instead of recomputing it: bitwise equal
    cell by cell, and groups that edit the prompt call are still computed in full."""
    b = prepare(llama, *_qa(PROBS))
    base = baseline(llama, b)
    groups = [
        [Edit(1, "latent_1")],
        [Edit(INPUT, "latent_0", op="add", value=torch.ones(64))],
        [Edit(2, "bot")],
        [Edit(0, "q_1")],
        [Edit(1, "eot"), Edit(2, "resp_1")],
    ]
    full = run_cells(llama, b, groups, base.plan, cells_per_pass=1)
    shared = run_cells(llama, b, groups, base.plan, cells_per_pass=1, prompt=base.prompt)
    batched = run_cells(llama, b, groups, base.plan, prompt=base.prompt)
    for k in full:
        assert torch.equal(full[k], shared[k]), k
        torch.testing.assert_close(full[k], batched[k], rtol=0, atol=1e-5)
    assert not torch.equal(full["answer_logp"][2], base.scores["answer_logp"])  # the <bot> edit did act


def test_patching_full_last_layer_reproduces_clean(llama):
    """Writing the clean last-layer residual at every position into the corrupt run gives the clean scores
    exactly: logits and fed-back thoughts are functions of that residual alone."""
    n = llama.n_layers
    cq, ca = _qa(CLEAN)
    kq, ka = _qa(CORRUPT)
    bc, bk = prepare(llama, cq, ca, foils=ka), prepare(llama, kq, ca, foils=ka)
    base_k = baseline(llama, bk)
    base_c = baseline(llama, bc, layers=[n], positions=base_k.plan.labels)
    group = [
        Edit(n, p, base_c.resid[n][:, i], valid=base_c.plan.valid[:, i])
        for i, p in enumerate(base_k.plan.labels)
    ]
    s = run_cells(llama, bk, [group], base_k.plan, cells_per_pass=1)
    for k in ("correct", "answer_logp", "margin", "logit_diff"):
        assert torch.equal(s[k][0], base_c.scores[k]), k
    assert not torch.equal(base_k.scores["answer_logp"], base_c.scores["answer_logp"])
    # batched together with other cells: same up to float32 noise
    s = run_cells(llama, bk, [[Edit(1, "bot")], group, [Edit(0, "q_0")]], base_k.plan)
    torch.testing.assert_close(s["logit_diff"][1], base_c.scores["logit_diff"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("base", ["llama", "gpt2"])
def test_batched_patch_sweep_equals_cell_by_cell(base, request):
    cm = request.getfixturevalue(base)
    g1 = P.patch(cm, CLEAN, CORRUPT, layers="all", positions="all", progress=False)
    g2 = P.patch(
        cm,
        CLEAN,
        CORRUPT,
        layers="all",
        positions="all",
        cells_per_pass=1,
        share_prompt=False,
        progress=False,
    )
    assert g1.layers == [INPUT] + list(range(cm.n_layers + 1)) and g1.positions == g2.positions
    for k in g1.metrics:
        np.testing.assert_allclose(g1.metrics[k], g2.metrics[k], rtol=0, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(g1.scores, g2.scores, rtol=0, atol=1e-4, equal_nan=True)
    # cells that cannot matter are exactly zero effect; 'input' exists only at latents
    q0 = g1.positions.index("q_0")
    assert g2.sel("recovered", layer=cm.n_layers)[q0] == 0.0
    assert np.isnan(g1.sel("recovered", layer=INPUT)[q0]) and np.isfinite(
        g1.sel("recovered", layer=INPUT, position="latent_0")
    )
    # patching the changed number's token at the embedding layer moves the answer towards the clean one
    assert np.nanmax(g1.metrics["recovered"][g1.layers.index(0)]) > 0


def test_ablate_batched_equals_cell_by_cell_and_modes(llama):
    kw = dict(positions="latents", layers="all", progress=False)
    g1 = P.ablate(llama, PROBS, mode="resample", **kw)
    g2 = P.ablate(llama, PROBS, mode="resample", cells_per_pass=1, share_prompt=False, **kw)
    for k in g1.metrics:
        np.testing.assert_allclose(g1.metrics[k], g2.metrics[k], rtol=0, atol=1e-4)
    assert g1.config["baseline"]["answer_logp"] == pytest.approx(
        g1.metrics["answer_logp"][-1, -1] - g1.metrics["delta_logp"][-1, -1]
    )
    # mean over a single problem = its own value: no change, exactly (cell by cell keeps the batch identical)
    g = P.ablate(llama, PROBS[:1], mode="mean", cells_per_pass=1, **kw)
    assert np.all(g.metrics["delta_logp"] == 0) and np.all(g.metrics["delta_margin"] == 0)
    # Llama adds nothing to inputs_embeds: zeroing the fed-back thought == zeroing the layer-0 residual there
    z = P.ablate(llama, PROBS, mode="zero", **kw)
    np.testing.assert_array_equal(z.sel("answer_logp", layer=INPUT), z.sel("answer_logp", layer=0))
    assert not np.allclose(z.metrics["delta_logp"], 0)
    # ablating a set together
    t = P.ablate(
        llama, PROBS, positions=["latent_0", "latent_2"], layers=["input"], together=True, progress=False
    )
    assert t.positions == ["latent_0+latent_2"] and t.metrics["answer_logp"].shape == (1, 1)


def test_gpt2_input_level_differs_from_layer0(gpt2):
    """GPT-2 adds position embeddings after the fed-back thought: input-level and layer-0 ablations differ."""
    z = P.ablate(gpt2, PROBS, positions="latents", layers=["input", 0], mode="zero", progress=False)
    assert not np.allclose(z.sel("answer_logp", layer=INPUT), z.sel("answer_logp", layer=0))


def test_steer_linear_readout_and_zero_alpha(llama):
    torch.manual_seed(1)
    w = torch.randn(llama.d_model)
    grids = P.steer(
        llama,
        PROBS,
        w,
        layers=[1],
        positions=["latent_1"],
        alphas=[0.0, 2.0],
        readout=(1, "latent_1"),
        cells_per_pass=1,
        progress=False,
    )
    assert np.all(grids[0.0].metrics["delta_logp"] == 0) and np.all(grids[0.0].metrics["delta_readout"] == 0)
    # reading out at the steered cell itself: the score moves by exactly alpha * |w|^2 (edits run before
    # records)
    assert grids[2.0].sel("delta_readout", 1, "latent_1") == pytest.approx(2.0 * float(w @ w), rel=1e-5)
    assert grids[2.0].sel("delta_logp", 1, "latent_1") != 0


def test_grid_roundtrip_and_heatmap(llama, tmp_path):
    import viz

    g = P.ablate(llama, PROBS, positions="latents", layers=["input", 1], progress=False)
    g2 = type(g).load(g.save(tmp_path / "g"))
    np.testing.assert_array_equal(g2.metrics["delta_logp"], g.metrics["delta_logp"])
    fig = viz.heatmap(g, metric="delta_logp", chance=0.0)
    assert list(fig.data[0].y) == [-1, 1]


def test_changed_number_pairs():
    assert replay("<<7+5=12>> <<12*3=36>>", 8) == ("<<8+5=13>> <<13*3=39>>", [13, 39])
    assert replay("<<9/3=3>>", 10) is None and replay("<<4-3=1>>", 2) is None
    probs = data.arithmetic(30, steps=(2, 3), seed=0)
    clean, corrupt = changed_number_pairs(probs, seed=0)
    assert len(clean) == len(corrupt) >= 25
    for a, b in zip(clean, corrupt):
        assert a.answer != b.answer and b.values[-1] == int(b.answer)
        wa, wb = a.question.split(), b.question.split()
        assert len(wa) == len(wb) and sum(x != y for x, y in zip(wa, wb)) == 1


def test_bad_input(llama):
    with pytest.raises(ValueError, match="mode="):
        P.ablate(llama, PROBS, mode="noise")
    with pytest.raises(ValueError, match="no answer"):
        P.ablate(llama, ["3 + 4 = ?"])
    with pytest.raises(ValueError, match="latent_\\* positions"):
        P.ablate(llama, PROBS, positions=["bot"], layers=["input"], progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        P.ablate(llama, PROBS, positions=["latent_7"], progress=False)
    with pytest.raises(ValueError, match="0..2"):
        P.ablate(llama, PROBS, layers=[5])
    with pytest.raises(TypeError, match="not a CODI model"):
        P.ablate(object(), PROBS)
    with pytest.raises(ValueError, match="d_model=64"):
        P.steer(llama, PROBS, torch.zeros(3), progress=False)


def test_cli_patch_and_ablate(llama, tmp_path, capsys):
    from app.cli import main
    from probes.grid import ProbeGrid

    llama.save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "4", "--arith-steps", "2"]
    assert (
        main(
            ["patch", *common, "--layers", "input,2", "--positions", "latents", "--out", str(tmp_path / "p")]
        )
        == 0
    )
    g = ProbeGrid.load(tmp_path / "p")
    assert (
        g.layers == [-1, 2]
        and g.positions == ["latent_0", "latent_1", "latent_2"]
        and "recovered" in g.metrics
    )
    assert (
        main(
            [
                "patch",
                "--study",
                "ablate",
                *common,
                "--mode",
                "mean",
                "--merge",
                "--heatmap",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (tmp_path / "a" / "heatmap.html").exists()
    assert ProbeGrid.load(tmp_path / "a").config["mode"] == "mean"
    assert main(["patch", *common, "--out", str(tmp_path / "p")]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_changed_number_pairs_keep_token_count_smollm2():
    """With a real tokenizer (smollm2-135m) every pair has the same prompt length: labels align."""
    from interp.models import load_model

    tok = load_model("smollm2-135m").tokenizer
    clean, corrupt = changed_number_pairs(data.arithmetic(40, steps=3, seed=2), tok, seed=0)
    assert len(clean) >= 30
    for a, b in zip(clean, corrupt):
        assert len(tok(a.question)["input_ids"]) == len(tok(b.question)["input_ids"]) and a.answer != b.answer


def test_probe_direction_matches_decision_function():
    import probes

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 16)) * rng.uniform(0.5, 3, 16) + rng.normal(size=16)
    y = (X[:, 0] + 0.5 * X[:, 3] + rng.normal(size=80) > X[:, 0].mean()).astype(int)
    for probe in (probes.LogisticProbe(Cs=(1.0,)), probes.DiffMeanProbe()):
        w, b = P.probe_direction(probe.fit(X, y))
        np.testing.assert_allclose(X @ w + b, probe.decision_function(X), rtol=1e-9, atol=1e-9)
