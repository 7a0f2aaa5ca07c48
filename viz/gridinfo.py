"""What figures read from any result grid: depth, model name, chance level, failed cells, cell text; escaping.

>>> from viz.gridinfo import n_layers_of, chance_of, plot_text
>>> chance_of("auroc"), chance_of("p_value")
(0.5, None)
>>> plot_text("<s> & </s>")
'&lt;s&gt; &amp; &lt;/s&gt;'
"""

from __future__ import annotations

import html
import math

import numpy as np

from grids import ResultGrid

# Metrics whose chance level is known without looking at the data; others get a sequential colour scale.
CHANCE = {
    "auroc": 0.5,
    "auroc_lo": 0.5,
    "auroc_hi": 0.5,
    "accuracy": 0.5,
    "train_auroc": 0.5,
    "balanced_accuracy": 0.5,
    "selectivity": 0.0,
    "gap": 0.0,
    "r2": 0.0,
    "pearson_r": 0.0,
}
# Check findings of these severities mark their cells as failed on heatmaps.
FAILED_SEVERITIES = ("error", "warning")


def chance_of(metric: str) -> float | None:
    """Chance level of a metric (0.5 for auroc/accuracy, 0 for selectivity/gap/r2), None if not known.

    >>> chance_of("auroc"), chance_of("selectivity"), chance_of("delta_logp")
    (0.5, 0.0, None)
    """
    return CHANCE.get(metric)


def plot_text(text: object) -> str:
    """Text for plotly labels: plotly reads some HTML in labels, so escape <, > and & to show them as is.

    >>> plot_text("</think> & 18")
    '&lt;/think&gt; &amp; 18'
    """
    return html.escape(str(text), quote=False)


def _find_key(d: object, key: str, depth: int = 3) -> object:
    if not isinstance(d, dict) or depth < 0:
        return None
    if d.get(key) is not None:
        return d[key]
    for v in d.values():
        found = _find_key(v, key, depth - 1)
        if found is not None:
            return found
    return None


def n_layers_of(grid: ResultGrid, n_layers: int | None = None) -> int:
    """Number of blocks of the probed model, from grid.config (searched for an "n_layers" key).

    Raises ValueError with the fix (pass n_layers=) when the config does not say.

    >>> from grids import ResultGrid
    >>> n_layers_of(ResultGrid([0], ["a"], {}, config={"cache": {"n_layers": 30}}))     # found nested
    30
    >>> n_layers_of(ResultGrid([0], ["a"], {}))
    Traceback (most recent call last):
    ...
    ValueError: grid.config has no 'n_layers' (the model's block count), ...; pass n_layers=... or set ...
    """
    if n_layers is not None:
        return int(n_layers)
    found = _find_key(grid.config, "n_layers")
    if found is None:
        raise ValueError(
            "grid.config has no 'n_layers' (the model's block count), so layers cannot be put on a "
            "relative-depth axis; pass n_layers=... or set grid.config['n_layers']"
        )
    return int(found)


def model_name_of(grid: ResultGrid, default: str = "model") -> str:
    """Model name from grid.config ("model" or "model_name" key, possibly nested under cache meta).

    >>> from grids import ResultGrid
    >>> model_name_of(ResultGrid([0], ["a"], {}, config={"cache": {"model": "smollm2-135m"}})), model_name_of(
    ...     ResultGrid([0], ["a"], {}), default="grid 0")
    ('smollm2-135m', 'grid 0')
    """
    for key in ("model", "model_name", "base_model", "base_name"):
        found = _find_key(grid.config, key)
        if isinstance(found, str) and found:
            return found
    return default


def failed_cells(grid: ResultGrid) -> dict[tuple[int, str], list[str]]:
    """{(layer, position): ["severity kind: message", ...]} for cells named by error/warning findings.

    >>> from grids import Finding, ResultGrid
    >>> g = ResultGrid([0, 1], ["bot"], {}, warnings=[Finding("identical_features", "same rows", "error", [(0, "bot")]),
    ...                                              Finding("note", "just so you know", "info", [(1, "bot")])])
    >>> failed_cells(g)                                 # info findings mark nothing
    {(0, 'bot'): ['error identical_features: same rows']}
    """
    out: dict[tuple[int, str], list[str]] = {}
    for f in grid.warnings:
        if f.severity not in FAILED_SEVERITIES:
            continue
        for cell in f.cells:
            out.setdefault((int(cell[0]), str(cell[1])), []).append(f"{f.severity} {f.kind}: {f.message}")
    return out


def fmt(x: float, digits: int = 3) -> str:
    """A number for display; NaN/None as 'n/a'; p-values in general format.

    >>> fmt(0.91234), fmt(0.00012), fmt(float("nan")), fmt(None), fmt(2.0, digits=1)
    ('0.912', '0.00012', 'n/a', 'n/a', '2.0')
    """
    if (
        x is None
        or (isinstance(x, float) and not math.isfinite(x))
        or (isinstance(x, np.floating) and not np.isfinite(x))
    ):
        return "n/a"
    return f"{float(x):.{digits}g}" if abs(float(x)) < 1e-3 and x != 0 else f"{float(x):.{digits}f}"


def metric_at(grid: ResultGrid, name: str, li: int, pi: int) -> float:
    """grid.metrics[name][li, pi] as a float, NaN when the grid has no such metric.

    >>> from grids import ResultGrid
    >>> g = ResultGrid([3, 7], ["bot"], {"auroc": np.array([[0.5], [0.8]])})
    >>> metric_at(g, "auroc", 1, 0), metric_at(g, "f1", 1, 0)          # indices, not layer numbers
    (0.8, nan)
    """
    m = grid.metrics.get(name)
    return float(m[li, pi]) if m is not None else float("nan")


def cell_text(grid: ResultGrid, metric: str, li: int, pi: int) -> str:
    """Hover text of one cell: metric with CI (if the grid has `<metric>_lo/_hi`), p-value and n.

    >>> import numpy as np
    >>> from grids import ResultGrid
    >>> auroc = np.array([[0.5, 0.7], [0.9, np.nan]])
    >>> g = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": auroc, "auroc_lo": auroc - 0.1,
    ...                "auroc_hi": auroc + 0.07, "p_value": np.array([[0.5, 0.01], [1e-4, np.nan]]),
    ...                "n_test": np.full((2, 2), 40.0)})
    >>> cell_text(g, "auroc", 1, 0).split("<br>")
    ['layer 1, latent_0', 'auroc = 0.900  (95% CI [0.800, 0.970])', 'p = 0.0001', 'n = 40']
    """
    layer, position = grid.layers[li], grid.positions[pi]
    value = metric_at(grid, metric, li, pi)
    lo_name, hi_name = f"{metric}_lo", f"{metric}_hi"
    if metric == "accuracy" and "accuracy_lo" not in grid.metrics:
        lo_name = hi_name = ""
    lines = [f"layer {layer}, {plot_text(position)}", f"{metric} = {fmt(value)}"]
    if lo_name in grid.metrics and hi_name in grid.metrics:
        lines[-1] += (
            f"  (95% CI [{fmt(metric_at(grid, lo_name, li, pi))}, {fmt(metric_at(grid, hi_name, li, pi))}])"
        )
    if "p_value" in grid.metrics:
        lines.append(f"p = {fmt(metric_at(grid, 'p_value', li, pi))}")
    if "n_test" in grid.metrics:
        n = metric_at(grid, "n_test", li, pi)
        lines.append(f"n = {int(n) if math.isfinite(n) else 'n/a'}")
    elif grid.scores is not None:
        lines.append(f"n = {int(np.isfinite(grid.scores[li, pi]).sum())}")
    elif grid.n_samples is not None:
        lines.append(f"n = {grid.n_samples}")
    return "<br>".join(lines)
