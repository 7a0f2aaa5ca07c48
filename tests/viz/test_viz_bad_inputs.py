"""Bad arguments of viz.heatmap and viz.report: refused with the argument named, and no report file written."""

from __future__ import annotations

import pytest

import viz

B = ValueError
CASES = [
    ("heatmap-grid-none", lambda t, g: viz.heatmap(None), B, "grid=None"),
    ("heatmap-grid-dict", lambda t, g: viz.heatmap({"auroc": 1}), B, "grid="),
    ("heatmap-metric-int", lambda t, g: viz.heatmap(g, metric=5), B, "metric=5"),
    ("heatmap-metric-unknown", lambda t, g: viz.heatmap(g, metric="auc"), KeyError, "'auc'"),
    ("heatmap-chance-text", lambda t, g: viz.heatmap(g, chance="half"), B, "chance='half'"),
    ("heatmap-n-layers-zero", lambda t, g: viz.heatmap(g, n_layers=0), B, "n_layers=0"),
    ("heatmap-positions-string", lambda t, g: viz.heatmap(g, positions="latent_0"), B, "positions='latent_0'"),
    ("heatmap-depth-text", lambda t, g: viz.heatmap(g, depth_normalised="yes"), B, "depth_normalised='yes'"),
    ("report-out-empty", lambda t, g: viz.report([g], out=""), B, "out=''"),
    ("report-out-folder", lambda t, g: viz.report([g], out=t), B, "out="),
    ("report-out-under-file", lambda t, g: viz.report([g], out=t / "notes.txt" / "r.html"), B, "under an existing"),
    ("report-png-folder", lambda t, g: viz.report([g], out=t / "r.html", png=t), B, "png="),
    ("report-grids-none", lambda t, g: viz.report(None, out=t / "r.html"), B, "grids=None"),
    ("report-grids-empty", lambda t, g: viz.report([], out=t / "r.html"), B, "grids=[]: must hold at least one"),
    ("report-grids-folder-name", lambda t, g: viz.report("runs/probe", out=t / "r.html"), B, "grids='runs/probe'"),
    ("report-grids-not-grids", lambda t, g: viz.report(["runs/probe"], out=t / "r.html"), TypeError, "ProbeGrid"),
    ("report-names-mismatch", lambda t, g: viz.report([g], out=t / "r.html", names=["a", "b"]), B, "2 names"),
    ("report-title-none", lambda t, g: viz.report([g], out=t / "r.html", title=None), B, "title=None"),
    ("report-metric-int", lambda t, g: viz.report([g], out=t / "r.html", metric=1), B, "metric=1"),
]


@pytest.mark.parametrize("call, error, named", [pytest.param(*x[1:], id=x[0]) for x in CASES])
def test_refused(refused, tmp_path, grid, call, error, named):
    (tmp_path / "notes.txt").write_text("a user's file")
    refused(lambda: call(tmp_path, grid), error, named)
