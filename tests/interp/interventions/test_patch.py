"""Activation patching (interp/interventions/patch.py), through the old home `interp.patching` as users call it."""

from __future__ import annotations

import numpy as np
import pytest
from interventions_fixtures import CLEAN, CORRUPT

from interp import patching as P
from interp.interventions.engine import INPUT


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


def test_patching_a_fed_back_thought_writes_the_clean_run_s_same_thought(llama):
    """Cell (input, latent_j) writes the clean run's thought j, for every j: recomputed with hand-made edits."""
    from interp.interventions.engine import Edit, baseline, run_cells
    from interp.interventions.patch import pair_batches

    g = P.patch(llama, CLEAN, CORRUPT, layers=["input"], positions="latents", progress=False)
    bc, bk = pair_batches(llama, CLEAN, CORRUPT)
    base_c, base_k = baseline(llama, bc, [], "latents"), baseline(llama, bk, [], "latents")
    k = llama.config.num_latents
    s = run_cells(llama, bk, [[Edit(INPUT, f"latent_{j}", base_c.latent_inputs[:, j])] for j in range(k)],
                  base_k.plan)
    assert g.positions == [f"latent_{j}" for j in range(k)]
    np.testing.assert_allclose(g.scores[0], s["logit_diff"].numpy(), rtol=0, atol=1e-5)   # [thought, pair]
    assert np.ptp(g.scores[0], axis=0).max() > 1e-4          # the thoughts differ in effect: the test can tell them
