"""ROC curves of chosen (layer, position) cells from the held-out scores and labels of a probe grid.

>>> import numpy as np, probes, viz
>>> rng = np.random.default_rng(0)
>>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
>>> acts = rng.normal(size=(60, 2, 2, 4)); acts[:, 1, :, 0] += 2 * y[:, None]     # layer 1 carries the label
>>> grid = probes.sweep(acts, labels=y, groups=g, positions=["latent_0", "resp_0"], Cs=(1.0,), n_permutations=0,
...                     n_bootstrap=100, progress=False)
>>> fig = viz.roc(grid, cells=[(1, "latent_0"), (0, "resp_0")])
>>> fig = viz.roc(grid)            # best cell overall, best latent cell, best response cell
>>> sorted(d.name.split(":")[0] for d in fig.data if d.showlegend is not False)    # a curve per cell, chance
['L1 latent_0', 'L1 resp_0', 'chance']

A ROC curve needs held-out decision scores AND the labels they are scored against, which only a probe sweep
(`probes.sweep` -> `probes.ProbeGrid`) has; a neutral `grids.ResultGrid` (ablation, patching, steering,
attribution) is refused with an error that says so.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from jaxtyping import Float

from argcheck import BadArgument
from grids import ResultGrid
from viz.gridinfo import fmt, metric_at, plot_text
from viz.position_kinds import position_kind

MAX_FPR = 0.01  # the operating point marked on each curve: best recall at a false-positive rate of at most 1%


def has_labels(grid: ResultGrid) -> bool:
    """True for a grid with held-out scores and their labels (a probe sweep), the inputs of a ROC curve.

    >>> import grids
    >>> has_labels(grids.ResultGrid([0], ["a"], {}, scores=np.zeros((1, 1, 2))))
    False
    """
    return getattr(grid, "y", None) is not None and grid.scores is not None


def roc_points(y: np.ndarray, score: Float[np.ndarray, " sample"]) -> tuple[np.ndarray, np.ndarray]:  # noqa: F722
    """(fpr, tpr) of the ROC curve, one point per distinct threshold, from (0, 0) to (1, 1). NaN scores
    dropped.

    The positive class is the larger of the two labels. Same points as sklearn.metrics.roc_curve with
    drop_intermediate=False (minus its first point at threshold +inf, which is our (0, 0)).

    >>> roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    (array([0. , 0. , 0.5, 0.5, 1. ]), array([0. , 0.5, 0.5, 1. , 1. ]))
    """
    ok = np.isfinite(score)
    y, score = np.asarray(y)[ok], np.asarray(score, dtype=np.float64)[ok]
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            f"ROC needs exactly two classes among the held-out samples, found {classes.tolist()}; "
            "draw ROC only for binary probe targets"
        )
    positive = (y == classes[1]).astype(np.float64)
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    tps = np.cumsum(positive)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a ROC curve by the trapezoid rule (equals the Mann-Whitney AUROC, ties counted half).

    >>> auc(*roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])))
    0.75
    """
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def point_at_fpr(fpr: np.ndarray, tpr: np.ndarray, max_fpr: float = MAX_FPR) -> tuple[float, float]:
    """The ROC point with the highest recall among those with fpr <= max_fpr.

    >>> fpr, tpr = roc_points(np.array([0, 1] * 4), np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4]))
    >>> point_at_fpr(fpr, tpr), point_at_fpr(fpr, tpr, max_fpr=0.25)      # (fpr, recall)
    ((0.0, 0.75), (0.25, 1.0))
    """
    ok = fpr <= max_fpr + 1e-12
    i = int(np.flatnonzero(ok)[np.argmax(tpr[ok])])
    return float(fpr[i]), float(tpr[i])


def default_cells(grid: ResultGrid, metric: str = "auroc") -> list[tuple[int, str]]:
    """Best cell overall, best latent cell and best response cell (those that exist), without duplicates.

    >>> from grids import ResultGrid
    >>> g = ResultGrid([0, 1], ["q_0", "latent_0", "resp_0"], {"auroc": np.array([[0.9, 0.6, 0.5], [0.7, 0.8, 0.6]])})
    >>> default_cells(g)
    [(0, 'q_0'), (1, 'latent_0'), (1, 'resp_0')]
    """
    cells = [grid.best(metric)]
    for kind in ("latent", "response"):
        chosen = [p for p in grid.positions if position_kind(p) == kind]
        if chosen and np.isfinite(grid.metrics[metric][:, [grid.positions.index(p) for p in chosen]]).any():
            cell = grid.best(metric, positions=chosen)
            if cell not in cells:
                cells.append(cell)
    return cells


def _legend(grid: ResultGrid, layer: int, position: str, curve_auc: float) -> str:
    li, pi = grid.layers.index(layer), grid.positions.index(position)
    value = metric_at(grid, "auroc", li, pi)
    if not np.isfinite(value):
        return f"L{layer} {plot_text(position)}: AUROC {fmt(curve_auc)} (from scores)"
    text = f"L{layer} {plot_text(position)}: AUROC {fmt(value)}"
    if "auroc_lo" in grid.metrics and "auroc_hi" in grid.metrics:
        text += f" [{fmt(metric_at(grid, 'auroc_lo', li, pi))}, {fmt(metric_at(grid, 'auroc_hi', li, pi))}]"
    if abs(value - curve_auc) > 0.005:
        text += f" (pooled curve {fmt(curve_auc)})"
    return text


def roc(grid: ResultGrid, cells: list[tuple[int, str]] | None = None, title: str | None = None) -> go.Figure:
    """ROC curves of `cells` ([(layer, position), ...]; default: best overall, best latent, best response
    cell).

    Curves come from the held-out scores (grid.scores) and labels (grid.y); the legend gives each cell's AUROC
    with its 95% CI (grid.metrics); a marker shows the best recall at <= 1% false-positive rate; the diagonal
    is chance. Samples never held out (NaN score) are left out.

    >>> import probes
    >>> y = np.array([0, 1] * 4)
    >>> scores = np.array([[[0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4]]])           # [layer, position, sample]
    >>> grid = probes.ProbeGrid([1], ["latent_0"], {"auroc": np.array([[0.9375]]), "auroc_lo": np.array([[0.8]]),
    ...                         "auroc_hi": np.array([[1.0]])}, scores, y, np.arange(8))
    >>> fig = roc(grid, cells=[(1, "latent_0")])
    >>> fig.data[0].name, fig.data[0].x.tolist()
    ('L1 latent_0: AUROC 0.938 [0.800, 1.000]', [0.0, 0.0, 0.0, 0.0, 0.25, 0.25, 0.5, 0.75, 1.0])
    >>> fig.data[1].x, fig.data[1].y                 # the marker: best recall at <= 1% false positives
    ((0.0,), (0.75,))
    """
    if not has_labels(grid):
        raise BadArgument(
            "grid", grid, "must be a probe grid with held-out scores and labels (probes.sweep -> probes.ProbeGrid): a "
            "ROC curve plots held-out decision scores against their labels, and ablation, patching, steering and "
            "attribution grids hold effects, not labelled classifier scores",
            "draw this grid with viz.heatmap(grid, metric=...)",
            shown=f"{type(grid).__name__}(kind={grid.config.kind!r})")
    cells = default_cells(grid) if cells is None else [(int(c[0]), str(c[1])) for c in cells]
    if not cells:
        raise ValueError(
            "roc() got an empty list of cells; pass cells=[(layer, position), ...] or leave it out"
        )
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    traces = []
    for k, (layer, position) in enumerate(cells):
        if layer not in grid.layers or position not in grid.positions:
            raise KeyError(
                f"cell ({layer}, {position!r}) is not in this grid; it has layers {grid.layers} and "
                f"positions {grid.positions}"
            )
        li, pi = grid.layers.index(layer), grid.positions.index(position)
        fpr, tpr = roc_points(grid.y, grid.scores[li, pi])
        colour = colours[k % len(colours)]
        name = _legend(grid, layer, position, auc(fpr, tpr))
        traces.append(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=name,
                legendgroup=str(k),
                line={"color": colour, "width": 2, "shape": "linear"},
                hovertemplate="FPR %{x:.3f}<br>TPR %{y:.3f}<extra>" + name + "</extra>",
            )
        )
        fx, ty = point_at_fpr(fpr, tpr)
        traces.append(
            go.Scatter(
                x=[fx],
                y=[ty],
                mode="markers",
                legendgroup=str(k),
                showlegend=False,
                name=f"L{layer} {plot_text(position)} at {MAX_FPR:.0%} FPR",
                marker={"color": colour, "size": 10, "symbol": "circle-open", "line": {"width": 2}},
                hovertemplate=f"recall {ty:.3f} at FPR {fx:.3f} (limit {MAX_FPR:.0%})<extra></extra>",
            )
        )
    traces.append(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            hoverinfo="skip",
            line={"color": "grey", "dash": "dash", "width": 1},
        )
    )
    fig = go.Figure(traces)
    n_pos, n_neg = _class_counts(grid.y)
    fig.update_layout(
        title={
            "text": plot_text(title)
            if title
            else f"ROC (held-out scores; {n_pos} positive, {n_neg} negative; o = best recall at "
            f"{MAX_FPR:.0%} FPR)"
        },
        xaxis={"title": {"text": "false-positive rate"}, "range": [-0.01, 1.01], "constrain": "domain"},
        yaxis={
            "title": {"text": "true-positive rate (recall)"},
            "range": [-0.01, 1.01],
            "scaleanchor": "x",
            "scaleratio": 1,
        },
        legend={
            "x": 0.98,
            "y": 0.02,
            "xanchor": "right",
            "yanchor": "bottom",
            "bgcolor": "rgba(255,255,255,0.8)",
        },
        template="plotly_white",
        width=640,
        height=560,
    )
    return fig


def _class_counts(y: np.ndarray) -> tuple[int, int]:
    classes = np.unique(y)
    if classes.size != 2:
        return int(y.size), 0
    return int((y == classes[1]).sum()), int((y == classes[0]).sum())
