"""Steering along a direction (interp/interventions/steer.py) and probe directions on raw residuals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interventions_fixtures import PROBS

from interp import patching as P


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


def test_probe_direction_matches_decision_function():
    import probes

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 16)) * rng.uniform(0.5, 3, 16) + rng.normal(size=16)
    y = (X[:, 0] + 0.5 * X[:, 3] + rng.normal(size=80) > X[:, 0].mean()).astype(int)
    for probe in (probes.LogisticProbe(Cs=(1.0,)), probes.DiffMeanProbe()):
        w, b = P.probe_direction(probe.fit(X, y))
        np.testing.assert_allclose(X @ w + b, probe.decision_function(X), rtol=1e-9, atol=1e-9)


def test_a_cell_some_problems_lack_is_averaged_over_the_others_paired(llama):
    """Steering at a question token only the longest question has: the other problems' scores are NaN and
    delta_logp / delta_readout are the steered problem's own changes, not means over all three problems."""
    from interventions_fixtures import qa as split

    from interp.interventions.batch import prepare
    from interp.interventions.engine import baseline

    base = baseline(llama, prepare(llama, *split(PROBS)), [], "question")
    i = [i for i in range(len(base.plan.labels)) if base.plan.valid[:, i].sum() == 1][-1]
    p, has = base.plan.labels[i], base.plan.valid[:, i].numpy()
    w = torch.ones(llama.d_model)
    g = P.steer(llama, PROBS, w, layers=[1], positions=[p], alphas=[3.0], readout=(1, p), progress=False)[3.0]
    assert np.all(np.isnan(g.scores[0, 0][~has]))
    assert g.metrics["delta_readout"][0, 0] == pytest.approx(3.0 * float(w @ w), rel=1e-5)   # alpha |w|^2 exactly
    assert g.metrics["delta_logp"][0, 0] == pytest.approx(
        float(g.metrics["answer_logp"][0, 0] - base.scores["answer_logp"].numpy()[has][0]), abs=1e-5)
    assert [w_.cells for w_ in g.warnings if w_.kind == "partial_cells"] == [[(1, p)]]
