import numpy as np
import pytest

import viz
from probes.grid import ProbeGrid

RUN_ORDER = ["q[-2]", "q[-1]", "bot", "latent_0", "latent_1", "eot", "resp_0", "resp_1"]


def _marked(fig):
    marks = [t for t in fig.data if t.name == "failed check"]
    return set(zip(marks[0].x, marks[0].y)) if marks else set()


def test_values_sit_under_their_layer_and_position_labels(grid):
    fig = viz.heatmap(grid, metric="auroc")
    hm = fig.data[0]
    assert list(hm.x) == RUN_ORDER  # grid.positions are scrambled; the figure is in run order
    assert list(hm.y) == grid.layers
    z = np.asarray(hm.z)
    for i, layer in enumerate(hm.y):
        for j, position in enumerate(hm.x):
            assert z[i, j] == grid.sel("auroc", layer=layer, position=position)
    # the planted signal: strongest at the last layer, latent_1
    i, j = np.unravel_index(np.argmax(z), z.shape)
    assert (hm.y[i], hm.x[j]) == (4, "latent_1")
    assert fig.layout.xaxis.title.text == "position (run order)" and fig.layout.yaxis.title.text == "layer"
    assert list(fig.layout.yaxis.tickvals) == list(fig.data[0].y)          # a tick per probed layer, no others


def test_hover_has_metric_ci_p_and_n(grid):
    hm = viz.heatmap(grid).data[0]
    j = list(hm.x).index("resp_0")
    text = hm.text[3][j]
    lo, hi = grid.sel("auroc_lo", 3, "resp_0"), grid.sel("auroc_hi", 3, "resp_0")
    assert "layer 3, resp_0" in text
    assert f"auroc = {grid.sel('auroc', 3, 'resp_0'):.3f}" in text
    assert f"95% CI [{lo:.3f}, {hi:.3f}]" in text
    assert f"p = {grid.sel('p_value', 3, 'resp_0'):.3f}" in text
    assert "n = 120" in text
    assert hm.hovertemplate == "%{text}<extra></extra>"


def test_diverging_scale_centred_on_chance(grid):
    hm = viz.heatmap(grid).data[0]
    assert (hm.zmid, hm.zmin, hm.zmax) == (0.5, 0.0, 1.0)
    assert hm.colorscale[0][1] != hm.colorscale[-1][1]
    assert viz.heatmap(grid, chance=0.6).data[0].zmid == 0.6
    seq = viz.heatmap(grid, metric="p_value").data[0]  # no chance level: sequential, no centre
    assert seq.zmid is None
    acc = viz.heatmap(grid, metric="accuracy").data[0]
    assert acc.zmid == 0.5 and "CI" not in acc.text[0][0]  # no accuracy CI in this grid: none shown


def test_failed_cells_are_marked_and_only_those(grid):
    fig = viz.heatmap(grid)
    expected = {
        (p, layer) for f in grid.warnings if f.severity in ("error", "warning") for layer, p in f.cells
    }
    assert _marked(fig) == expected
    assert {
        ("latent_0", 2),
        ("latent_1", 2),
        ("resp_1", 4),
    } <= expected  # the findings planted by the fixture
    info_only = {(p, layer) for f in grid.warnings if f.severity == "info" for layer, p in f.cells} - expected
    assert info_only and not info_only & _marked(fig)  # an info finding marks nothing
    mark = [t for t in fig.data if t.name == "failed check"][0]
    assert mark.marker.symbol == "x"
    k = list(zip(mark.x, mark.y)).index(("resp_1", 4))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mark.text[k]  # finding text shown escaped


def test_kind_separators_and_titles(grid):
    fig = viz.heatmap(grid)
    assert sorted(s.x0 for s in fig.layout.shapes) == [1.5, 2.5, 4.5, 5.5]
    assert [a.text for a in fig.layout.annotations] == ["question", "bot", "latents", "eot", "response"]
    assert [a.x for a in fig.layout.annotations] == [0.5, 2, 3.5, 5, 6.5]


def test_depth_normalised_axis(grid):
    fig = viz.heatmap(grid, depth_normalised=True)
    assert list(fig.data[0].y) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ("resp_1", 1.0) in _marked(fig) and ("latent_0", 0.5) in _marked(fig)
    assert fig.layout.yaxis.title.text.startswith("relative depth")
    no_depth = ProbeGrid(
        layers=grid.layers,
        positions=grid.positions,
        metrics=grid.metrics,
        scores=grid.scores,
        y=grid.y,
        groups=grid.groups,
        config={},
    )
    with pytest.raises(ValueError, match="n_layers="):
        viz.heatmap(no_depth, depth_normalised=True)
    assert list(viz.heatmap(no_depth, depth_normalised=True, n_layers=8).data[0].y)[-1] == 0.5


def test_bad_metric_and_position_names(grid):
    with pytest.raises(KeyError, match="available"):
        viz.heatmap(grid, metric="aucroc")
    with pytest.raises(KeyError, match="not in this grid"):
        viz.heatmap(grid, positions=["latent_7"])
    sub = viz.heatmap(grid, positions=["resp_0", "latent_1"]).data[0]
    assert list(sub.x) == ["latent_1", "resp_0"]
    assert np.asarray(sub.z)[4, 0] == grid.sel("auroc", 4, "latent_1")


def test_a_neutral_grid_draws_like_a_probe_grid(neutral_grid):
    """viz takes any grids.ResultGrid: an ablation grid's values sit under their labels; hover n comes from the
    grid's config (it has no per-sample scores); its findings mark cells."""
    fig = viz.heatmap(neutral_grid, metric="delta_logp", chance=0.0)
    hm = fig.data[0]
    assert list(hm.x) == ["latent_0", "latent_1", "latent_2"] and list(hm.y) == [-1, 0, 1, 2]
    z = np.asarray(hm.z)
    for i, layer in enumerate(hm.y):
        for j, position in enumerate(hm.x):
            assert z[i, j] == neutral_grid.sel("delta_logp", layer=layer, position=position)
    assert hm.text[0][0].endswith("<br>n = 5") and "<br>p = " not in hm.text[0][0]
    assert _marked(fig) == {("latent_0", 1)}
