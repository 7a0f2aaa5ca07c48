"""One self-contained HTML report: run configs, the checks' verdicts, heatmaps, ROC, comparison, lens.

plotly.js is embedded once, inline, so the file opens offline. Every piece of text that comes from data
(titles, names, configs, findings, tokens) is escaped; figure JSON sits in `<script type="application/json">`
blocks with `<`, `>` and `&` written as \\u escapes, so a `</script>` inside a value cannot end the block.

    >>> import tempfile, pathlib, numpy as np, viz
    >>> from grids import ResultGrid
    >>> m = np.array([[0.5, 0.6], [0.7, 0.9]])
    >>> g135m = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": m}, config={"n_layers": 1})
    >>> g500m = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": m - 0.1}, config={"n_layers": 2})
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> viz.report([g135m], out=out / "report.html", title="Deception in thoughts").name
    'report.html'
    >>> lens_table = {(1, "latent_0"): [(" 18", 0.6)]}
    >>> doc = viz.report([g135m, g500m], out=out / "two.html", names=["135M", "500M"], lens=lens_table).read_text()
    >>> "Across models" in doc and "Logit lens" in doc           # png="report.png" adds a screenshot (Chromium)
    True
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import warnings
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

import formats
from argcheck import BadArgument, check_new_path, check_str
from grids import ResultGrid
from viz.compare import best_by_kind, compare
from viz.gridinfo import fmt, model_name_of
from viz.heatmap import heatmap
from viz.lens import LensTable, as_lens_table
from viz.lens import lens as lens_figure
from viz.roc import has_labels, roc

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;
  margin:0 auto;max-width:1500px;padding:16px 28px}
h1{margin-bottom:4px}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
.meta{color:#666;font-size:13px}
.figure{overflow-x:auto;margin:8px 0 20px}
.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
.verdict{padding:8px 12px;border-radius:4px;margin:6px 0}
.ok{background:#e8f5e9}
.warning{background:#fff8e1}
.error{background:#ffebee}
.sev{font-weight:bold;text-transform:uppercase;font-size:12px}
pre.text{white-space:pre-wrap;background:#f7f7f7;padding:8px}
code{background:#f3f3f3;padding:0 3px}
"""

_DRAW = """<script>
(function(){var blocks=document.querySelectorAll('script[type="application/json"][data-figure]');
for(var i=0;i<blocks.length;i++){var b=blocks[i];var f=JSON.parse(b.textContent);
Plotly.newPlot(document.getElementById(b.getAttribute('data-figure')),f.data,f.layout,
{displaylogo:false,responsive:false});}})();
</script>"""


def _esc(text: object) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(str(text), quote=True)


def _script_json(obj_json: str) -> str:
    """JSON text made safe inside a <script> element: `<`, `>`, `&` and line separators as \\u escapes."""
    return (
        obj_json.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class _Page:
    """Collects HTML parts and figures; figures become a div plus a JSON block drawn after plotly.js loads."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n_figures = 0

    def add(self, raw_html: str) -> None:
        self.parts.append(raw_html)

    def figure(self, fig: go.Figure) -> None:
        self.parts.append(self.figure_html(fig))

    def row(self, figs: list[go.Figure]) -> None:
        """Figures side by side (wrapping on narrow screens)."""
        self.parts.append("<div class='row'>" + "".join(self.figure_html(f) for f in figs) + "</div>")

    def figure_html(self, fig: go.Figure) -> str:
        self.n_figures += 1
        div = f"figure-{self.n_figures}"
        return (
            f'<div class="figure"><div id="{div}"></div></div>\n<script type="application/json" '
            f'data-figure="{div}">{_script_json(pio.to_json(fig, validate=False))}</script>'
        )


def _flatten(d: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(d, dict) and d:
        rows = []
        for k, v in d.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    text = d if isinstance(d, str) else json.dumps(d, default=str)
    return [(prefix or "(value)", text if len(text) <= 400 else text[:400] + " …")]


def verdict(grid: ResultGrid) -> tuple[str, str]:
    """(css class, sentence): what the automatic checks say about this grid, in plain words.

    >>> from grids import Finding
    >>> g = ResultGrid([0], ["bot"], {"auroc": np.array([[0.5]])})
    >>> verdict(g)
    ('ok', 'No check failed: the automatic checks found nothing wrong with this sweep.')
    >>> g.warnings = [Finding("identical_features", "same rows", "error", [(0, "bot")])]
    >>> verdict(g)
    ('error', 'Do not trust these numbers yet: 1 check(s) failed with an error. Read the findings below.')
    """
    errors = [f for f in grid.warnings if f.severity == "error"]
    warns = [f for f in grid.warnings if f.severity == "warning"]
    if errors:
        return "error", (
            f"Do not trust these numbers yet: {len(errors)} check(s) failed with an error"
            + (f" and {len(warns)} gave a warning" if warns else "")
            + ". Read the findings below."
        )
    if warns:
        return (
            "warning",
            f"Read with care: {len(warns)} check(s) gave a warning; the cells they name carry an x.",
        )
    return "ok", "No check failed: the automatic checks found nothing wrong with this sweep."


def _best_sentence(grid: ResultGrid, metric: str) -> str:
    best = best_by_kind(grid, metric)
    if not best:
        return ""
    items = []
    for kind, b in best.items():
        ci = f" (95% CI [{fmt(b['lo'])}, {fmt(b['hi'])}])" if np.isfinite(b["lo"]) else ""
        ps = grid.p_text(b["layer"], b["position"])  # "p = x (uncorrected), p_FWER = y (max-T over N cells)"
        items.append(
            f"<li>best {_esc(kind)} cell: layer {b['layer']}, <code>{_esc(b['position'])}</code>: "
            f"{_esc(metric)} {fmt(b['value'])}{ci}{', ' + _esc(ps) if ps else ''}</li>"
        )
    return (
        "<p>Best cells (picked on the same data they are reported on, so the value and CI are optimistic; "
        "p_FWER, where shown, is corrected for picking among all cells):</p><ul>"
        + "".join(items)
        + "</ul>"
    )


def _size_text(grid: ResultGrid) -> str:
    """ "120 samples, 60 groups" for a probe grid; "ablation of 24 samples" for a neutral one."""
    if has_labels(grid):
        return f"{len(grid.y)} samples, {len(np.unique(grid.groups))} groups"
    n = grid.n_samples
    return f"{grid.config.kind or 'results'} of {n if n is not None else 'an unknown number of'} samples"


def _grid_section(page: _Page, grid: ResultGrid, name: str, metric: str, number: int) -> None:
    cls, sentence = verdict(grid)
    page.add(
        f"<h2 id='grid-{number}'>{_esc(name)}</h2>\n<p class='meta'>{len(grid.layers)} layers x "
        f"{len(grid.positions)} positions, {_esc(_size_text(grid))}</p>"
    )
    page.add(f"<div class='verdict {cls}'>{_esc(sentence)}</div>")
    if grid.warnings:
        rows = []
        for f in grid.warnings:
            cells = ", ".join(f"L{layer}/{p}" for layer, p in f.cells[:12])
            cells += f" (+{len(f.cells) - 12} more)" if len(f.cells) > 12 else ""
            rows.append(
                f"<tr><td class='sev'>{_esc(f.severity)}</td><td><code>{_esc(f.kind)}</code></td>"
                f"<td>{_esc(f.message)}</td><td>{_esc(cells or 'whole sweep')}</td></tr>"
            )
        page.add(
            "<table><tr><th>severity</th><th>check</th><th>what it found</th><th>cells</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    figs = []
    if metric not in grid.metrics:  # e.g. a ridge (regression) sweep has r2 / pearson_r instead of auroc
        metric = next((k for k in ("r2", "pearson_r") if k in grid.metrics), metric)
    if metric in grid.metrics:
        page.add(_best_sentence(grid, metric))
        figs.append(heatmap(grid, metric=metric, title=f"{name}: {metric} per layer and position"))
    else:
        page.add(
            f"<p>This grid has no {_esc(metric)} metric (it has {_esc(', '.join(sorted(grid.metrics)))}).</p>"
        )
    if metric == "auroc" and "auroc" in grid.metrics and has_labels(grid) and np.unique(grid.y).size == 2:
        figs.append(roc(grid, title=f"{name}: ROC of the best cells (held-out scores)"))
    if figs:
        page.row(figs)
    rows = "".join(
        f"<tr><td><code>{_esc(k)}</code></td><td>{_esc(v)}</td></tr>" for k, v in _flatten(grid.config)
    )
    page.add(
        f"<details><summary>Run config of {_esc(name)}</summary><table>{rows or '<tr><td>(empty)</td></tr>'}"
        "</table></details>"
    )


def _check_inputs(
    grids: list[ResultGrid], names: list[str] | None, lens: object, extra_sections: object
) -> None:
    if not grids:
        raise BadArgument("grids", grids, "must hold at least one result grid", "pass [grid] or a list of grids")
    bad = [type(g).__name__ for g in grids if not isinstance(g, ResultGrid)]
    if bad:
        raise TypeError(
            f"report() takes result grids (a probes.ProbeGrid, or a grids.ResultGrid of ablation, patching, ...), "
            f"got {bad}; load saved folders with probes.ProbeGrid.load(folder) or grids.ResultGrid.load(folder)"
        )
    if names is not None and len(names) != len(grids):
        raise ValueError(f"report() got {len(grids)} grids but {len(names)} names; give one name per grid")
    if lens is not None:
        as_lens_table(lens)  # TypeError naming the accepted inputs
    for item in extra_sections or []:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (go.Figure, str))):
            raise TypeError("extra_sections must be a list of (heading, plotly Figure or plain text) pairs")


def report(
    grids: list[ResultGrid] | ResultGrid,
    out: str | Path = "report.html",
    title: str = "codi-lens report",
    names: list[str] | None = None,
    lens: LensTable | dict | None = None,
    extra_sections: list[tuple[str, go.Figure | str]] | None = None,
    metric: str = "auroc",
    png: str | Path | None = None,
    lead_sections: list[tuple[str, go.Figure | str]] | None = None,
) -> Path:
    """Write ONE self-contained HTML file (plotly.js inline, no network needed) and return its path.

    Per grid: the checks' verdict in plain words and each finding, the best cells with CIs, the `metric`
    heatmap, ROC curves of the best cells (binary targets), the run config. With several grids: the comparison
    across models (relative depth). `lens`: logit-lens table (see viz.lens). `extra_sections`: (heading,
    Figure or plain text) pairs, e.g. patching results; `lead_sections` the same, placed before the grids.
    `png`: also save a screenshot of the top of the page
    with headless Chromium; without a browser this is skipped with a warning that says how to install one.

    >>> import tempfile
    >>> grid = ResultGrid([0, 1], ["latent_0", "resp_0"], {"auroc": np.array([[0.5, 0.6], [0.7, 0.9]])})
    >>> out = report([grid], out=Path(tempfile.mkdtemp()) / "report.html", title="Deception in thoughts",
    ...              extra_sections=[("Notes", "a <b>plain</b> text section")])
    >>> doc = out.read_text()
    >>> "<h1>Deception in thoughts</h1>" in doc, doc.count('data-figure="figure-'), "a &lt;b&gt;plain" in doc
    (True, 1, True)
    """
    out = check_new_path("out", out, fix="pass out='report.html'")
    png = None if png is None else check_new_path("png", png, fix="pass png='report.png' or None")
    check_str("title", title, nonempty=False)
    check_str("metric", metric, fix="pass a metric of the grids, e.g. 'auroc' or 'r2'")
    if isinstance(grids, (str, bytes)) or not isinstance(grids, (ResultGrid, list, tuple)):
        raise BadArgument("grids", grids, "must be a result grid (probes.ProbeGrid, grids.ResultGrid) or a list of "
                          "them", "load saved sweeps with "
                          "probes.load_grid(folder)")
    grids = [grids] if isinstance(grids, ResultGrid) else list(grids)
    _check_inputs(grids, names, lens, (extra_sections or []) + (lead_sections or []))
    names = list(names) if names is not None else [model_name_of(g, f"grid {i}") for i, g in enumerate(grids)]
    page = _Page()  # every figure is built before the file is touched, so bad input never leaves a half file
    _add_sections(page, lead_sections)
    for number, (grid, name) in enumerate(zip(grids, names), start=1):
        _grid_section(page, grid, name, metric, number)
    if len(grids) > 1 and all(metric in g.metrics for g in grids):
        page.add(
            "<h2 id='across-models'>Across models</h2><p>Layers on a relative-depth axis (layer / n_layers). "
            "In the lower panel, "
            "overlapping error bars mean the data cannot tell the models apart.</p>"
        )
        try:
            page.figure(compare(grids, names=names, metric=metric))
        except ValueError as err:  # e.g. a grid without n_layers in its config
            page.add(f"<p>Comparison skipped: {_esc(err)}</p>")
    if lens is not None:
        table = as_lens_table(lens)
        page.add("<h2 id='lens'>Logit lens of the continuous thoughts</h2>")
        if table.meta:
            page.add(
                "<table>"
                + "".join(
                    f"<tr><td><code>{_esc(k)}</code></td><td>{_esc(v)}</td></tr>"
                    for k, v in _flatten(table.meta)
                )
                + "</table>"
            )
        page.figure(lens_figure(table))
    _add_sections(page, extra_sections)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>{_CSS}</style>\n<script>{get_plotlyjs()}</script></head>\n<body>"
        f"<h1>{_esc(title)}</h1><p class='meta'>written {stamp} by codi-lens, plotly {plotly.__version__}; "
        f"{len(grids)} result grid(s)</p>\n" + "\n".join(page.parts) + "\n" + _DRAW + "\n</body></html>\n"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    formats.atomic_write_text(out, doc)
    if png is not None:
        export_png(out, png)
    return out


def _add_sections(page, sections: list[tuple[str, go.Figure | str]] | None) -> None:
    for heading, content in sections or []:
        page.add(f"<h2>{_esc(heading)}</h2>")
        if isinstance(content, go.Figure):
            page.figure(content)
        else:
            page.add(f"<pre class='text'>{_esc(content)}</pre>")


def export_png(html_path: str | Path, png: str | Path, window: tuple[int, int] = (1400, 1800)) -> Path | None:
    """Screenshot of the top of an HTML file with headless Chromium; None (and a warning) when there is
    none.

    >>> import tempfile
    >>> from viz.browser import find_browser
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "page.html").write_text("<html><body><h1>codi-lens</h1></body></html>")
    >>> png = export_png(folder / "page.html", folder / "page.png", window=(320, 200)) if find_browser() else None
    >>> png is None or png.name == "page.png"                 # headless Chromium, a few seconds
    True
    """
    from viz.browser import find_browser, no_browser_message, screenshot

    if find_browser() is None:
        warnings.warn(f"PNG export skipped: {no_browser_message()}", stacklevel=2)
        return None
    return screenshot(html_path, png, window=window)
