"""viz: plotly figures of result grids (probe sweeps, ablation, patching, ...) and one self-contained HTML report.

Figures take any `grids.ResultGrid` (viz imports the grids leaf, never probes); `viz.roc` needs a probe grid's
held-out scores and labels and refuses a neutral grid, saying why.

>>> import tempfile, pathlib, numpy as np, probes, viz
>>> rng = np.random.default_rng(0)
>>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
>>> acts = rng.normal(size=(60, 3, 2, 4)); acts[:, 2, 0, 0] += 2 * y       # [sample, layer, position, d]
>>> grid = probes.sweep(acts, labels=y, groups=g, positions=["resp_0", "latent_0"], Cs=(1.0,), n_permutations=0,
...                     n_bootstrap=100, progress=False)                    # or probes.load_grid(folder)
>>> grid.config["n_layers"] = 2                                          # (a sweep on a cache records it)
>>> fig = viz.heatmap(grid, metric="auroc")        # layers x positions (run order), centred on chance
>>> list(fig.data[0].x), fig.data[0].zmid
(['latent_0', 'resp_0'], 0.5)
>>> fig = viz.roc(grid, cells=[(2, "latent_0")])   # ROC from held-out scores, AUROC + CI in the legend
>>> fig = viz.compare([grid, grid], names=["135M", "500M"])   # relative depth + best-cell AUROC per kind
>>> fig = viz.lens({(2, "latent_0"): [(" 18", 0.6)]})   # logit-lens top tokens per layer and thought
>>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
>>> viz.report([grid], out=out, title="Deception in thoughts").stat().st_size > 1_000_000   # plotly.js inline
True
"""

from viz.browser import find_browser, render
from viz.compare import best_by_kind, compare
from viz.curves import curves
from viz.heatmap import heatmap
from viz.lens import LensTable, as_lens_table, lens
from viz.position_kinds import parse_position, position_kind, run_order
from viz.report import export_png, report
from viz.roc import roc, roc_points

__all__ = [
    "LensTable",
    "as_lens_table",
    "best_by_kind",
    "compare",
    "curves",
    "export_png",
    "find_browser",
    "heatmap",
    "lens",
    "parse_position",
    "position_kind",
    "render",
    "report",
    "roc",
    "roc_points",
    "run_order",
]
