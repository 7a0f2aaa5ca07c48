"""Activation patching (interp/interventions/patch.py), through the old home `interp.patching` as users call it."""

from __future__ import annotations

import numpy as np
import pytest
from interventions_fixtures import CLEAN, CORRUPT, PROBS

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


def test_grid_roundtrip_and_heatmap(llama, tmp_path):
    import viz

    g = P.ablate(llama, PROBS, positions="latents", layers=["input", 1], progress=False)
    g2 = type(g).load(g.save(tmp_path / "g"))
    np.testing.assert_array_equal(g2.metrics["delta_logp"], g.metrics["delta_logp"])
    fig = viz.heatmap(g, metric="delta_logp", chance=0.0)
    assert list(fig.data[0].y) == [-1, 1]


def test_cli_patch_and_ablate(llama, tmp_path, capsys):
    from app.cli import main
    from grids import ResultGrid

    llama.save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "4", "--arith-steps", "2"]
    assert (
        main(
            ["patch", *common, "--layers", "input,2", "--positions", "latents", "--out", str(tmp_path / "p")]
        )
        == 0
    )
    g = ResultGrid.load(tmp_path / "p")
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
    assert ResultGrid.load(tmp_path / "a").config["mode"] == "mean"
    assert main(["patch", *common, "--out", str(tmp_path / "p")]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
