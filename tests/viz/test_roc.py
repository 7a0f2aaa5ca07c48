import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

import viz
from viz.roc import auc, default_cells, point_at_fpr, roc_points


def test_roc_points_match_sklearn_with_ties_and_nans():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)  # rounding makes many ties
    s[:7] = np.nan  # never held out: dropped
    fpr, tpr = roc_points(y, s)
    ok = np.isfinite(s)
    ref_fpr, ref_tpr, _ = roc_curve(y[ok], s[ok], drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert auc(fpr, tpr) == pytest.approx(roc_auc_score(y[ok], s[ok]), abs=1e-12)
    # labels other than 0/1: the larger label is positive
    fpr2, tpr2 = roc_points(np.where(y == 1, 7, 3), s)
    np.testing.assert_allclose(tpr2, ref_tpr)
    with pytest.raises(ValueError, match="two classes"):
        roc_points(np.array([0, 1, 2, 1]), np.array([0.1, 0.2, 0.3, 0.4]))


def test_point_at_1pct_fpr():
    fpr = np.array([0.0, 0.0, 0.005, 0.01, 0.02, 1.0])
    tpr = np.array([0.0, 0.3, 0.4, 0.45, 0.9, 1.0])
    assert point_at_fpr(fpr, tpr) == (0.01, 0.45)


def test_figure_curves_legend_and_marker(grid):
    cells = [(4, "latent_1"), (2, "resp_0")]
    fig = viz.roc(grid, cells=cells)
    curves = [t for t in fig.data if t.mode == "lines" and t.name != "chance"]
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(curves) == len(points) == 2
    for (layer, position), curve, point in zip(cells, curves, points):
        s = grid.scores[grid.layers.index(layer), grid.positions.index(position)]
        ref_fpr, ref_tpr, _ = roc_curve(grid.y, s, drop_intermediate=False)
        np.testing.assert_allclose(curve.x, ref_fpr)
        np.testing.assert_allclose(curve.y, ref_tpr)
        a, lo, hi = (grid.sel(k, layer, position) for k in ("auroc", "auroc_lo", "auroc_hi"))
        assert curve.name.startswith(f"L{layer} {position}: AUROC {a:.3f} [{lo:.3f}, {hi:.3f}]")
        assert lo <= a <= hi
        ok = ref_fpr <= 0.01
        assert point.x[0] <= 0.01 and point.y[0] == ref_tpr[ok].max()
    chance = [t for t in fig.data if t.name == "chance"][0]
    assert list(chance.x) == [0, 1] and list(chance.y) == [0, 1]
    assert fig.layout.xaxis.title.text == "false-positive rate"
    assert "60 positive, 60 negative" in fig.layout.title.text


def test_default_cells_are_best_overall_latent_and_response(grid):
    cells = default_cells(grid)
    assert cells[0] == grid.best("auroc") == (4, "latent_1")
    assert cells[1] == grid.best("auroc", positions=["resp_0", "resp_1"])
    assert [t.name.split(":")[0] for t in viz.roc(grid).data if t.mode == "lines"][:2] == [
        f"L{layer} {p}" for layer, p in cells
    ]


def test_unknown_cell(grid):
    with pytest.raises(KeyError, match="not in this grid"):
        viz.roc(grid, cells=[(9, "latent_1")])


def test_a_neutral_grid_is_refused_saying_why(neutral_grid):
    """An ablation grid has effects, not labelled held-out scores: no ROC curve, and the error says what to do."""
    from argcheck import BadArgument

    with pytest.raises(BadArgument, match="ResultGrid\\(kind='ablation'\\).*held-out scores and labels.*viz.heatmap"):
        viz.roc(neutral_grid)
    with pytest.raises(ValueError):  # BadArgument is a ValueError and a TypeError
        viz.roc(neutral_grid, cells=[(0, "latent_0")])
