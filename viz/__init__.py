"""viz: plotly figures of result grids (probe sweeps, ablation, patching, ...) and one self-contained HTML report.

Figures take any `grids.ResultGrid` (viz imports the grids leaf, never probes); `viz.roc` needs a probe grid's
held-out scores and labels and refuses a neutral grid, saying why.

>>> import probes, viz
>>> grid = probes.ProbeGrid.load("runs/probe-smol")
>>> viz.heatmap(grid, metric="auroc")              # layers x positions (run order), centred on chance
>>> viz.roc(grid, cells=[(9, "latent_3")])         # ROC from held-out scores, AUROC + CI in the legend
>>> viz.compare([grid, grid_big], names=["135M", "500M"])   # relative depth + best-cell AUROC per kind
>>> viz.lens({(9, "latent_0"): [(" 18", 0.6)]})    # logit-lens top tokens per layer and thought
>>> viz.report([grid], out="report.html", title="Deception in thoughts")
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
