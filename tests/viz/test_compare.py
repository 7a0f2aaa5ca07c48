import numpy as np
import pytest

import viz
from viz.compare import best_by_kind


def test_relative_depth_heatmaps_side_by_side(grid, big_grid):
    fig = viz.compare([grid, big_grid], names=["small", "big"])
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    assert list(heat[0].y) == [0, 0.25, 0.5, 0.75, 1.0]
    assert list(heat[1].y) == [k / 8 for k in range(9)]
    assert (heat[0].xaxis, heat[1].xaxis) == ("x", "x2")
    for g, h in zip([grid, big_grid], heat):
        z = np.asarray(h.z)
        for j, p in enumerate(h.x):
            np.testing.assert_array_equal(z[:, j], g.sel("auroc", position=p))
    titles = [a.text for a in fig.layout.annotations]
    assert "small (4 layers)" in titles and "big (8 layers)" in titles
    assert heat[0].showscale and not heat[1].showscale


def test_summary_best_cell_with_ci_per_kind(grid, big_grid):
    fig = viz.compare([grid, big_grid], names=["small", "big"])
    summary = {t.name: t for t in fig.data if t.type == "scatter" and t.name.startswith("best ")}
    assert set(summary) == {"best question cell", "best latent cell", "best response cell"}
    lat = summary["best latent cell"]
    assert list(lat.x) == ["small", "big"] and lat.xaxis == "x3"
    for k, g in enumerate([grid, big_grid]):
        layer, pos = g.best("auroc", positions=["latent_0", "latent_1"])
        a, lo, hi = (g.sel(m, layer, pos) for m in ("auroc", "auroc_lo", "auroc_hi"))
        assert lat.y[k] == a
        assert lat.error_y.array[k] == pytest.approx(hi - a) and lat.error_y.arrayminus[k] == pytest.approx(
            a - lo
        )
        assert f"layer {layer}, {pos}" in lat.text[k]
    resp = best_by_kind(big_grid)["response"]
    assert resp["position"] in ("resp_0", "resp_1") and resp["value"] == big_grid.sel(
        "auroc", resp["layer"], resp["position"]
    )
    chance_line = [s for s in fig.layout.shapes if s.yref == "y3"]
    assert len(chance_line) == 1 and chance_line[0].y0 == 0.5


def test_names_default_dedupe_and_errors(grid, big_grid):
    fig = viz.compare([grid, grid])
    lat = [t for t in fig.data if t.name == "best latent cell"][0]
    assert list(lat.x) == ["tiny-llama", "tiny-llama (2)"]
    with pytest.raises(ValueError, match="one name per grid"):
        viz.compare([grid, big_grid], names=["only one"])
    with pytest.raises(ValueError, match="at least one"):
        viz.compare([])
    fig = viz.compare([grid], names=["<b>x</b>"])
    assert "&lt;b&gt;x&lt;/b&gt; (4 layers)" in [a.text for a in fig.layout.annotations]
