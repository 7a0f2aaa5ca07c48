"""`codi-lens demo --quick` end to end on smollm2-135m (real weights): the demo's own stages (app/demo.py).

The demo runs once per session (the `demo_run` / `demo` fixtures of tests/app/conftest.py, a few minutes on 2 busy
cores); the tests read what it wrote. Tests of the same run that check another module's part live in that module's
file: the report (test_demo_report), the organism stage (test_demo_organism), the deception stages
(test_demo_deception).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import probes
from app.demo import best_cells

pytestmark = pytest.mark.slow  # the demo runs the real-weight model (smollm2-135m + the shipped adapter)


def test_demo_prints_no_python_warning(demo_run):
    """The main job's output is clean: no warning of numpy, scikit-learn, transformers or peft scrolls past (each
    is handled where it arises; issue 14 Build 4)."""
    _, stdout, stderr = demo_run
    shown = [line for line in (stdout + stderr).splitlines() if re.search(r"[A-Z]\w*Warning\b|warnings\.warn", line)]
    assert not shown, "\n".join(shown[:10])


def test_accuracy_table_has_three_modes(demo):
    out, summary = demo
    acc = summary["accuracy"]
    assert sorted(acc) == ["codi", "cot", "no_cot"]
    for r in acc.values():
        assert r["n"] == 8 and 0 <= r["correct"] <= 8 and r["accuracy"] == r["correct"] / 8
    html = (out / "report.html").read_text()
    assert "no reasoning (answer directly)" in html and "written reasoning (chain of thought)" in html


def test_response_probe_on_deception_is_clearly_above_chance(demo):
    """Response tokens hold the honest vs lying answer text after the instruction: any CODI model (even
    untrained) must give a response-token probe whose CI lies well above 0.5."""
    out, summary = demo
    grid = probes.ProbeGrid.load(out / "grids" / "deception")
    best = best_cells(grid)["best_response"]
    assert best["auroc_lo"] > 0.6, best
    assert summary["deception"]["best_response"]["auroc"] == pytest.approx(best["auroc"])
    assert grid.config["n_permutations"] == 10 and np.isfinite(best["p_value"])
    # every kind of position was cached and probed: question tail, bot, all 6 thoughts, eot, response tokens
    for p in ["q[-1]", "bot", *(f"latent_{j}" for j in range(6)), "eot", "resp_0"]:
        assert p in grid.positions
    # layer 0 of the question tail is the token embedding: it cannot depend on the instruction before it, and
    # the checks must say so (identical features across labels within a question)
    # (an info finding when no deeper layer is identical)
    ident = [f for f in grid.warnings if f.kind == "identical_features"]
    assert ident and (0, "q[-1]") in [tuple(c) for c in ident[0].cells]
    assert ident[0].severity == ("error" if any(c[0] != 0 for c in ident[0].cells) else "info")


def test_intermediate_values_grids(demo):
    out, summary = demo
    for j in range(3):
        g = probes.ProbeGrid.load(out / "grids" / f"value_{j}")
        assert g.config["regression"] and "r2" in g.metrics
        r2 = g.metrics["r2"]
        assert np.isfinite(r2).any() and np.nanmax(r2) <= 1.0
        assert summary["values"][f"value_{j}"]["best"]["r2"] == pytest.approx(float(np.nanmax(r2)))
    g = probes.ProbeGrid.load(out / "grids" / "value_1_large")
    assert set(np.unique(g.y)) == {0, 1} and "auroc" in g.metrics


def test_ablation_grid_per_latent(demo):
    out, summary = demo
    g = probes.load_grid(out / "grids" / "ablate_zero")  # a neutral grids.ResultGrid
    assert type(g).__name__ == "ResultGrid"
    assert g.layers == [-1] and g.positions == [f"latent_{j}" for j in range(6)]
    base = g.config["baseline"]
    # delta = ablated - unablated, per thought
    np.testing.assert_allclose(
        g.metrics["delta_logp"], g.metrics["answer_logp"] - base["answer_logp"], atol=1e-9
    )
    assert summary["ablation"]["zero"]["delta_logp"]["latent_0"] == pytest.approx(
        g.metrics["delta_logp"][0, 0]
    )


def test_lens_table(demo):
    out, summary = demo
    lens = json.loads((out / "lens.json").read_text())
    cells = {(c["layer"], c["position"]) for c in lens["cells"]}
    assert {p for _, p in cells} == {f"latent_{j}" for j in range(6)}
    assert {layer for layer, _ in cells} == {0, 6, 12, 18, 24, 30}
    assert all(len(c["top"]) == 5 and 0 <= c["top"][0][1] <= 1 for c in lens["cells"])
    assert len(summary["lens"]["values"]) == 3
