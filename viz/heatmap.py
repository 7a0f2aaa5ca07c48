"""Layer x position heatmap of one metric of any result grid (probes, ablation, patching, ...), positions in run
order, failed cells marked with an x.

>>> import numpy as np, viz
>>> from grids import ResultGrid
>>> grid = ResultGrid([0, 1, 2], ["resp_0", "latent_0", "q[-1]"], {"auroc": np.array([[0.5, 0.6, 0.5],
...                   [0.6, 0.8, 0.5], [0.7, 0.9, 0.55]])}, config={"n_layers": 2})    # any result grid
>>> fig = viz.heatmap(grid, metric="auroc")                  # plotly Figure: y = layer, x = position
>>> list(fig.data[0].x), list(fig.data[0].y)                 # positions in run order
(['q[-1]', 'latent_0', 'resp_0'], [0, 1, 2])
>>> list(viz.heatmap(grid, depth_normalised=True).data[0].y)    # y = layer / n_layers (from grid.config)
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from argcheck import BadArgument, check_bool, check_float, check_int, check_str, check_strings
from grids import ResultGrid
from viz.gridinfo import cell_text, chance_of, failed_cells, n_layers_of, plot_text
from viz.position_kinds import KIND_TITLES, kind_groups, run_order

DIVERGING = "RdBu_r"  # blue below chance, white at chance, red above
SEQUENTIAL = "Viridis"
_AUTO = "auto"


def _colour_range(values: np.ndarray, chance: float | None, metric: str) -> dict:
    """Heatmap colour arguments: diverging and centred on `chance` when given, else sequential."""
    if chance is None:
        return {"colorscale": SEQUENTIAL}
    finite = values[np.isfinite(values)]
    if metric in ("auroc", "accuracy", "train_auroc", "balanced_accuracy", "auroc_lo", "auroc_hi"):
        span = max(chance, 1.0 - chance)  # the whole [0, 1] range, centred on chance
    else:
        span = float(np.abs(finite - chance).max()) if finite.size else 1.0
        span = span or 1.0
    return {"colorscale": DIVERGING, "zmid": chance, "zmin": chance - span, "zmax": chance + span}


def heatmap_trace(
    grid: ResultGrid,
    metric: str = "auroc",
    depth_normalised: bool = False,
    chance: float | None | str = _AUTO,
    positions: list[str] | None = None,
    n_layers: int | None = None,
    showscale: bool = True,
) -> tuple[go.Heatmap, go.Scatter | None]:
    """The heatmap trace and the failed-cell marker trace (None if no cell failed) for one grid.

    Used by `heatmap` and by `compare`; x = position labels in run order, y = layers (or layer / n_layers).

    >>> from grids import Finding, ResultGrid
    >>> g = ResultGrid([0, 1], ["latent_0", "bot"], {"auroc": np.array([[0.5, 0.6], [0.7, 0.9]])},
    ...                warnings=[Finding("identical_features", "same rows", "error", [(0, "bot")])])
    >>> trace, marker = heatmap_trace(g, "auroc")
    >>> list(trace.x), trace.z.tolist(), trace.zmid                 # columns in run order, centred on chance
    (['bot', 'latent_0'], [[0.6, 0.5], [0.9, 0.7]], 0.5)
    >>> marker.x, marker.y                                           # the failed cell's x
    (('bot',), (0,))
    """
    if metric not in grid.metrics:
        raise KeyError(f"metric {metric!r} is not in this grid; available: {sorted(grid.metrics)}")
    if chance == _AUTO:
        chance = chance_of(metric)
    shown = run_order(positions if positions is not None else grid.positions)
    missing = [p for p in shown if p not in grid.positions]
    if missing:
        raise KeyError(f"positions {missing} are not in this grid; it has {grid.positions}")
    cols = [grid.positions.index(p) for p in shown]
    z = grid.metrics[metric][:, cols]
    depth = n_layers_of(grid, n_layers) if depth_normalised else None
    ys = [(layer / depth if depth else layer) for layer in grid.layers]
    text = [[cell_text(grid, metric, li, pi) for pi in cols] for li in range(len(grid.layers))]
    bar_title = metric if chance is None else f"{metric}<br>(chance {chance:g})"
    trace = go.Heatmap(
        z=z,
        x=shown,
        y=ys,
        text=text,
        hovertemplate="%{text}<extra></extra>",
        colorbar={"title": {"text": bar_title}},
        showscale=showscale,
        hoverongaps=False,
        name=metric,
        **_colour_range(z, chance, metric),
    )
    bad = failed_cells(grid)
    marks = [
        (p, ys[grid.layers.index(layer)], "<br>".join(plot_text(m) for m in msgs))
        for (layer, p), msgs in bad.items()
        if layer in grid.layers and p in shown
    ]
    if not marks:
        return trace, None
    xs, yv, hover = zip(*marks)
    marker = go.Scatter(
        x=list(xs),
        y=list(yv),
        mode="markers",
        name="failed check",
        marker={"symbol": "x", "size": 11, "color": "black", "line": {"width": 1}},
        text=list(hover),
        hovertemplate="%{text}<extra>failed check</extra>",
        showlegend=False,
    )
    return trace, marker


def kind_shapes(labels: list[str], xref: str = "x", yref: str = "y domain") -> tuple[list[dict], list[dict]]:
    """Separator lines between kinds of positions and a group title above each run (shapes, annotations).

    >>> shapes, notes = kind_shapes(["q[-1]", "latent_0", "latent_1", "resp_0"])
    >>> [s["x0"] for s in shapes], [n["text"] for n in notes]       # a line between kinds, a title above each
    ([0.5, 2.5], ['question', 'latents', 'response'])
    """
    shapes, notes = [], []
    for n, (kind, first, last) in enumerate(kind_groups(labels)):
        if n > 0:
            shapes.append(
                {
                    "type": "line",
                    "xref": xref,
                    "yref": yref,
                    "x0": first - 0.5,
                    "x1": first - 0.5,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "black", "width": 2},
                }
            )
        notes.append(
            {
                "text": KIND_TITLES[kind],
                "xref": xref,
                "yref": yref,
                "x": (first + last) / 2,
                "y": 1.0,
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
    return shapes, notes


def heatmap(
    grid: ResultGrid,
    metric: str = "auroc",
    depth_normalised: bool = False,
    chance: float | None | str = _AUTO,
    positions: list[str] | None = None,
    n_layers: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Layers (y) x positions (x, run order: question, bot, latents, eot, response) heatmap of `metric`.

    Colour: diverging, centred on `chance` (default: 0.5 for auroc/accuracy, 0 for selectivity/gap, sequential
    for metrics without a chance level; pass chance=0.6 or chance=None to override). Hover: value, 95% CI,
    p-value and n. Cells named by an error/warning finding of the checks carry a black x.
    `depth_normalised=True` puts layer / n_layers on the y axis (n_layers from grid.config or the argument).

    >>> from grids import ResultGrid
    >>> grid = ResultGrid([0, 1], ["resp_0", "latent_0"], {"auroc": np.array([[0.5, 0.6], [0.7, 0.9]]),
    ...                                                    "p_value": np.array([[0.5, 0.2], [0.01, 0.001]])})
    >>> fig = heatmap(grid, "auroc")
    >>> t = fig.data[0]
    >>> bool(t.z[1][0] == grid.sel("auroc", layer=t.y[1], position=t.x[0])), t.x[0]    # each value under its labels
    (True, 'latent_0')
    >>> t.text[1][0].split("<br>"), fig.layout.title.text
    (['layer 1, latent_0', 'auroc = 0.900', 'p = 0.001'], 'auroc per layer and position')
    >>> heatmap(grid, "p_value", chance=None).data[0].colorscale[0]      # no chance level: sequential colours
    (0.0, '#440154')
    """
    if not all(hasattr(grid, a) for a in ("metrics", "layers", "positions")):
        raise BadArgument("grid", grid, "must be a result grid (probes.ProbeGrid or grids.ResultGrid)",
                          "pass a probes.sweep / interp.patching result or probes.load_grid(folder)")
    check_str("metric", metric)
    check_bool("depth_normalised", depth_normalised)
    if chance is not _AUTO:
        check_float("chance", chance, none_ok=True, fix="pass a number, None (sequential colours), or leave it out")
    check_int("n_layers", n_layers, min=1, none_ok=True)
    if positions is not None:
        check_strings("positions", positions)
    trace, marker = heatmap_trace(grid, metric, depth_normalised, chance, positions, n_layers)
    fig = go.Figure([trace] + ([marker] if marker is not None else []))
    shapes, notes = kind_shapes(list(trace.x))
    n_pos = len(trace.x)
    fig.update_layout(
        title={"text": plot_text(title) if title else f"{metric} per layer and position"},
        xaxis={
            "title": {"text": "position (run order)"},
            "type": "category",
            "tickangle": -60,
            "range": [-0.5, n_pos - 0.5],
        },
        yaxis={
            "title": {"text": "relative depth (layer / n_layers)" if depth_normalised else "layer"},
            **({} if depth_normalised or len(grid.layers) > 40 else _layer_ticks(list(trace.y))),
        },
        shapes=shapes,
        annotations=notes,
        template="plotly_white",
        width=max(560, 230 + (44 if n_pos <= 16 else 24) * n_pos),
        height=max(420, 200 + (36 if len(grid.layers) <= 12 else 20) * len(grid.layers)),
        margin={"t": 80},
    )
    return fig


def _layer_ticks(ys: list[float]) -> dict:
    """One tick per probed layer (a layer stride leaves gaps) and no padding rows beyond the first and last."""
    lo = (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.5
    hi = (ys[-1] - ys[-2]) / 2 if len(ys) > 1 else 0.5
    return {"tickmode": "array", "tickvals": ys, "range": [ys[0] - lo, ys[-1] + hi]}
