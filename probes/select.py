"""Comparing and picking cells of a ProbeGrid without fooling yourself.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    >>> acts = rng.normal(size=(60, 3, 1, 8)); acts[:, 2, 0, 0] += 2.0 * y         # layer 2 carries the label
    >>> grid = probes.sweep(acts, labels=y, groups=g, positions=["last"], Cs=(1.0,), n_permutations=0,
    ...                     test_size=0.5, progress=False)           # CV on half of the groups, the rest held out
    >>> best = probes.pick_best(grid)     # best cell by CV AUROC, reported on the held-out groups
    >>> (best["layer"], best["position"]), bool(best["test_auroc_lo"] > 0.9)
    ((2, 'last'), True)
    >>> bool(probes.delong(grid, (2, "last"), (0, "last"))["p_value"] < 0.001)   # same samples, two cells
    True
"""

from __future__ import annotations

import numpy as np

from argcheck import BadArgument, check_str
from probes.grid import ProbeGrid
from probes.inputs import check_grid
from probes.metrics import delong as _delong


def delong(grid: ProbeGrid, cell_a: tuple[int, str], cell_b: tuple[int, str], on: str = "cv") -> dict:
    """DeLong test of AUROC(cell_a) == AUROC(cell_b) on the samples both cells scored.

    on="cv": the cross-validated scores; on="test": the held-out test scores (needs a sweep with test_size).
    Returns {"auroc_a", "auroc_b", "diff", "z", "p_value", "n", "cell_a", "cell_b"}.

    >>> import probes
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    >>> acts = rng.normal(size=(60, 3, 1, 8)); acts[:, 2, 0, 0] += 2.0 * y
    >>> grid = probes.sweep(acts, labels=y, groups=g, Cs=(1.0,), n_permutations=0, test_size=0.5, progress=False)
    >>> d = delong(grid, (2, "0"), (0, "0"))                     # on the cross-validated half
    >>> d["n"], round(d["auroc_a"], 2), round(d["auroc_b"], 2), bool(d["p_value"] < 0.001)
    (30, 0.88, 0.36, True)
    >>> delong(grid, (2, "0"), (0, "0"), on="test")["n"]        # on the held-out half
    30
    """
    ia, ib = grid.cell_index(*cell_a), grid.cell_index(*cell_b)
    test = np.isin(np.arange(len(grid.y)), grid.config.get("test_idx", []))
    keep = test if on == "test" else ~test
    if on not in ("cv", "test"):
        raise ValueError(f"on={on!r}: use 'cv' or 'test'")
    if grid.config.get("regression"):
        raise ValueError("DeLong compares AUROCs: this grid is a regression sweep")
    a = np.where(keep, grid.scores[ia], np.nan)
    b = np.where(keep, grid.scores[ib], np.nan)
    out = _delong(a, b, grid.y)
    out.update(cell_a=(int(cell_a[0]), str(cell_a[1])), cell_b=(int(cell_b[0]), str(cell_b[1])))
    return out


def pick_best(grid: ProbeGrid, select: str = "auroc", report: str = "test_auroc",
              positions: list[str] | None = None, layers: list[int] | None = None) -> dict:
    """Pick the cell with the best `select` metric (cross-validated) and report its `report` metric measured on
    held-out groups never used for picking. Needs a sweep run with test_size=...

    This is the held-out confirmation of a selected cell: `probes.sweep(..., test_size=0.5, seed=s)` splits the
    groups once (seed `s`) into a selection part, where every cell is cross-validated and the best is picked, and a
    confirmation part, scored by a probe fitted on the whole selection part; the confirmation AUROC and its
    group-bootstrap CI are not inflated by the picking.

    Returns {"layer", "position", select, report, report + "_lo", report + "_hi", "n_cells_compared",
    "n_select" (samples cross-validated at that cell), "n_report" (held-out samples scored at that cell)}, plus
    "p_corrected" (max-T over every cell of the grid, on the selection part: conservative when `positions` or
    `layers` restrict the comparison) when the grid has it.

    >>> import probes
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    >>> acts = rng.normal(size=(60, 3, 1, 8)); acts[:, 2, 0, 0] += 2.0 * y
    >>> grid = probes.sweep(acts, labels=y, groups=g, Cs=(1.0,), n_permutations=0, test_size=0.5, seed=0,
    ...                     progress=False)
    >>> best = pick_best(grid)
    >>> best["layer"], best["n_cells_compared"], best["n_select"], best["n_report"]
    (2, 3, 30, 30)
    >>> round(best["auroc"], 2), round(best["test_auroc"], 2)   # picked on CV, confirmed on unseen groups
    (0.88, 1.0)
    """
    check_grid("grid", grid)
    check_str("select", select)
    check_str("report", report)
    if select not in grid.metrics:
        raise BadArgument("select", select, f"is not a metric of this grid ({sorted(grid.metrics)[:12]}...)",
                          "pass e.g. select='auroc' (classification) or 'r2' (ridge)")
    if report not in grid.metrics:
        raise ValueError(f"report={report!r}: this grid has no {report!r}: run probes.sweep(..., test_size=0.25) "
                         f"so that a held-out part of the groups is left for reporting")
    layer, pos = grid.best(select, positions=positions, layers=layers)
    out = {"layer": layer, "position": pos, select: grid.sel(select, layer, pos),
           report: grid.sel(report, layer, pos)}
    for suffix in ("_lo", "_hi"):
        if report + suffix in grid.metrics:
            out[report + suffix] = grid.sel(report + suffix, layer, pos)
    keep = np.isfinite(grid.metrics[select])
    if positions is not None:
        keep &= np.isin(np.array(grid.positions, dtype=object), list(positions))[None, :]
    if layers is not None:
        keep &= np.isin(np.array(grid.layers), list(layers))[:, None]
    out["n_cells_compared"] = int(keep.sum())
    test = np.isin(np.arange(len(grid.y)), grid.config.get("test_idx", []))
    scored = np.isfinite(grid.scores[grid.cell_index(layer, pos)])
    out["n_select"], out["n_report"] = int((scored & ~test).sum()), int((scored & test).sum())
    if "p_corrected" in grid.metrics:
        out["p_corrected"] = grid.sel("p_corrected", layer, pos)
    return out
