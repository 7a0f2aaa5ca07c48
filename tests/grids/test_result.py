"""grids.result.ResultGrid: lookup, best cell, table, summary, shapes, no faked labels."""

from __future__ import annotations

import numpy as np
import pytest

from grids import Finding, ResultGrid


def _grid() -> ResultGrid:
    m = {"recovered": np.array([[0.9, np.nan], [0.2, 0.4], [0.1, -0.3]]),
         "logit_diff": np.array([[3.0, np.nan], [1.0, 2.0], [0.5, -1.0]])}
    return ResultGrid([-1, 0, 1], ["latent_0", "eot"], m, scores=np.arange(18.0).reshape(3, 2, 3),
                      warnings=[Finding("no_effect", "flat", "warning", [(0, "eot")])],
                      config={"kind": "patching", "model": "tiny-llama", "n_layers": 1, "n": 3})


def test_sel_best_table_summary():
    g = _grid()
    assert g.best("recovered") == (-1, "latent_0")
    assert g.best("recovered", positions=["eot"]) == (0, "eot")
    assert g.best("recovered", layers=[1]) == (1, "latent_0")
    assert g.sel("recovered", layer=0).tolist() == [0.2, 0.4]
    assert g.sel("logit_diff", position="eot")[1:].tolist() == [2.0, -1.0]
    assert g.sel("recovered", 1, "eot") == -0.3
    t = g.table()
    assert list(t.columns) == ["layer", "position", "logit_diff", "recovered"] and t.shape == (6, 4)
    assert t.iloc[3].tolist() == [0, "eot", 2.0, 0.4]
    assert g.n_samples == 3 and g.p_text(0, "eot") == ""
    s = g.summary("recovered")
    assert s.splitlines()[0] == "ResultGrid (patching): 3 layers x 2 positions, 3 samples; model=tiny-llama"
    assert "best cell: layer -1, latent_0: recovered=0.900" in s and "WARNING no_effect: flat [L0/eot]" in s
    with pytest.raises(KeyError, match="layer 5 is not in this grid"):
        g.sel("recovered", layer=5)
    with pytest.raises(KeyError, match="metric 'auroc' not in this grid"):
        g.sel("auroc")
    with pytest.raises(ValueError, match="no finite 'recovered'"):
        g.best("recovered", positions=["eot"], layers=[-1])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="expected \\[layers, positions\\]"):
        ResultGrid([0], ["a"], {"x": np.zeros((2, 1))})
    with pytest.raises(ValueError, match="scores has shape"):
        ResultGrid([0], ["a"], {"x": np.zeros((1, 1))}, scores=np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "y", "fatal")


def test_neutral_grid_has_no_labels():
    """The point of the neutral grid: no faked labels or groups."""
    g = _grid()
    assert not hasattr(g, "y") and not hasattr(g, "groups")
