"""The same study across models (any result grids): heatmaps on a relative-depth axis, best cell (with CI) per kind.

>>> import numpy as np, viz
>>> from grids import ResultGrid
>>> def grid(n_layers):                                      # any result grids whose config names n_layers
...     m = np.linspace(0.5, 0.9, 3 * (n_layers + 1)).reshape(n_layers + 1, 3)
...     return ResultGrid(list(range(n_layers + 1)), ["q[-1]", "latent_0", "resp_0"], {"auroc": m},
...                       config={"n_layers": n_layers})
>>> fig = viz.compare([grid(2), grid(4)], names=["SmolLM2-135M", "Qwen2.5-0.5B"])
>>> [list(d.y) for d in fig.data if d.type == "heatmap"]     # layer / n_layers: both run from 0 to 1
[[0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]]
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from argcheck import BadArgument
from grids import ResultGrid
from viz.gridinfo import chance_of, fmt, metric_at, model_name_of, n_layers_of, plot_text
from viz.heatmap import heatmap_trace, kind_shapes
from viz.position_kinds import position_kind

# Position kinds summarised in the bottom panel, in run order; "token" covers plain models (tok_*, last).
SUMMARY_KINDS = ("question", "latent", "response", "token")
KIND_COLOURS = {"question": "#7f7f7f", "latent": "#d62728", "response": "#1f77b4", "token": "#2ca02c"}


def best_by_kind(grid: ResultGrid, metric: str = "auroc") -> dict[str, dict]:
    """{kind: {layer, position, value, lo, hi, p_value}} of the best cell among each kind's positions.

    "token" includes tok_*, prompt[-k] and last. Kinds without finite values are left out.
    The best of many cells, picked and reported on the same data, is optimistic.

    >>> auroc = np.array([[0.5, 0.6, 0.7], [0.6, 0.9, 0.8]])
    >>> g = ResultGrid([0, 1], ["q[-1]", "latent_0", "latent_1"], {"auroc": auroc, "auroc_lo": auroc - 0.1})
    >>> best = best_by_kind(g)
    >>> sorted(best), best["latent"]["layer"], best["latent"]["position"], best["latent"]["lo"]
    (['latent', 'question'], 1, 'latent_0', 0.8)
    >>> best["latent"]["hi"]                                  # no auroc_hi in this grid
    nan
    """
    out = {}
    for kind in SUMMARY_KINDS:
        chosen = [
            p
            for p in grid.positions
            if position_kind(p) == kind or (kind == "token" and position_kind(p) == "last")
        ]
        cols = [grid.positions.index(p) for p in chosen]
        if not cols or not np.isfinite(grid.metrics[metric][:, cols]).any():
            continue
        layer, position = grid.best(metric, positions=chosen)
        li, pi = grid.layers.index(layer), grid.positions.index(position)
        out[kind] = {
            "layer": layer,
            "position": position,
            "value": metric_at(grid, metric, li, pi),
            "lo": metric_at(grid, f"{metric}_lo", li, pi),
            "hi": metric_at(grid, f"{metric}_hi", li, pi),
            "p_value": metric_at(grid, "p_value", li, pi),
        }
    return out


def _names(grids: list[ResultGrid], names: list[str] | None) -> list[str]:
    if names is not None and len(names) != len(grids):
        raise ValueError(f"compare() got {len(grids)} grids but {len(names)} names; give one name per grid")
    raw = list(names) if names is not None else [model_name_of(g, f"grid {i}") for i, g in enumerate(grids)]
    seen: dict[str, int] = {}
    out = []
    for name in raw:  # keep categories distinct when two grids have the same model name
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _summary_traces(grids: list[ResultGrid], names: list[str], metric: str) -> list[go.Scatter]:
    best = [best_by_kind(g, metric) for g in grids]
    traces = []
    for kind in SUMMARY_KINDS:
        rows = [(plot_text(n), b[kind]) for n, b in zip(names, best) if kind in b]
        if not rows:
            continue
        xs = [n for n, _ in rows]
        val = np.array([r["value"] for _, r in rows])
        lo = np.array([r["lo"] for _, r in rows])
        hi = np.array([r["hi"] for _, r in rows])
        hover = [
            f"{n}<br>best {kind} cell: layer {r['layer']}, {plot_text(r['position'])}<br>{metric} "
            f"{fmt(r['value'])} (95% CI [{fmt(r['lo'])}, {fmt(r['hi'])}])<br>p = {fmt(r['p_value'])}"
            for n, r in rows
        ]
        traces.append(
            go.Scatter(
                x=xs,
                y=val,
                mode="markers",
                name=f"best {kind} cell",
                text=hover,
                hovertemplate="%{text}<extra></extra>",
                marker={"size": 11, "color": KIND_COLOURS[kind]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.nan_to_num(hi - val).tolist(),
                    "arrayminus": np.nan_to_num(val - lo).tolist(),
                    "thickness": 2,
                    "width": 6,
                },
            )
        )
    return traces


def compare(
    grids: list[ResultGrid],
    names: list[str] | None = None,
    metric: str = "auroc",
    n_layers: list[int] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Side-by-side heatmaps (y = layer / n_layers, so models of different depth line up) and, below, the best
    cell's `metric` with its 95% CI per model and per position kind (question, latent, response; token for
    plain models). Does scale help? Compare the error bars, not the dots.

    `names` default to the model name in each grid's config; `n_layers` overrides the block counts.

    >>> m = np.array([[0.5, 0.6], [0.7, 0.9]])
    >>> g135m = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": m}, config={"n_layers": 1})
    >>> g500m = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": m - 0.1}, config={"n_layers": 2})
    >>> fig = compare([g135m, g500m], names=["135M", "500M"])
    >>> [d.name for d in fig.data]                    # two heatmaps, then the best cell per kind across models
    ['auroc', 'auroc', 'best latent cell', 'best response cell']
    >>> fig.layout.annotations[0].text, fig.data[-1].y.tolist()
    ('135M (1 layers)', [0.9, 0.8])
    """
    if not grids:
        raise BadArgument("grids", grids, "must hold at least one result grid", "pass [grid] or a list of grids")
    if n_layers is not None and len(n_layers) != len(grids):
        raise ValueError(f"compare() got {len(grids)} grids but {len(n_layers)} n_layers values")
    names = _names(grids, names)
    depths = [n_layers_of(g, n_layers[i] if n_layers else None) for i, g in enumerate(grids)]
    cols = len(grids)
    fig = make_subplots(
        rows=2,
        cols=cols,
        shared_yaxes=True,
        row_heights=[0.6, 0.4],
        vertical_spacing=0.22,
        horizontal_spacing=min(0.06, 0.3 / cols),
        specs=[[{} for _ in range(cols)], [{"colspan": cols}] + [None] * (cols - 1)],
        subplot_titles=[f"{plot_text(n)} ({d} layers)" for n, d in zip(names, depths)]
        + [f"best-cell {metric} per position kind, 95% CI (best of many cells: optimistic)"],
    )
    shapes, notes = [], [a.update(yshift=16) if k < cols else a for k, a in enumerate(fig.layout.annotations)]
    for k, (grid, depth) in enumerate(zip(grids, depths)):
        trace, marker = heatmap_trace(grid, metric, depth_normalised=True, n_layers=depth, showscale=(k == 0))
        trace.update(colorbar={"len": 0.55, "y": 0.78})
        fig.add_trace(trace, row=1, col=k + 1)
        if marker is not None:
            fig.add_trace(marker, row=1, col=k + 1)
        axis = "" if k == 0 else str(k + 1)
        s, a = kind_shapes(list(trace.x), xref=f"x{axis}", yref=f"y{axis} domain")
        shapes += s
        notes += [dict(n, font={"size": 9}) for n in a]
        fig.update_xaxes(type="category", tickangle=-60, range=[-0.5, len(trace.x) - 0.5], row=1, col=k + 1)
    fig.update_yaxes(title={"text": "relative depth (layer / n_layers)"}, row=1, col=1)
    for t in _summary_traces(grids, names, metric):
        fig.add_trace(t, row=2, col=1)
    chance = chance_of(metric)
    if chance is not None:
        shapes.append(
            {
                "type": "line",
                "xref": f"x{cols + 1} domain",
                "yref": f"y{cols + 1}",
                "x0": 0,
                "x1": 1,
                "y0": chance,
                "y1": chance,
                "line": {"color": "grey", "dash": "dash", "width": 1},
            }
        )
    fig.update_xaxes(type="category", title={"text": "model"}, row=2, col=1)
    fig.update_yaxes(title={"text": f"best {metric}"}, row=2, col=1)
    fig.update_layout(
        title={"text": plot_text(title) if title else f"{metric} across models"},
        shapes=shapes,
        annotations=notes,
        template="plotly_white",
        scattermode="group",
        legend={"orientation": "h", "y": -0.12},
        width=max(700, 330 * cols),
        height=820,
    )
    return fig
