"""viz.curves (named test_viz_curves.py: tests/interp/interventions/test_curves.py has the basename test_curves.py):
one line per curve with its steps and values, error bars from `_lo`/`_hi`, axis titles per kind, clear errors."""

from types import SimpleNamespace

import numpy as np
import pytest

import viz


def _curve(name, kind="necessity", lo_hi=True):
    acc = np.array([0.0, 0.25, 0.5, 0.9])
    values = {"accuracy": acc, "logp": -np.arange(4.0)}
    if lo_hi:
        values.update(accuracy_lo=acc - 0.05, accuracy_hi=np.minimum(acc + 0.1, 1.0))
    return SimpleNamespace(name=name, kind=kind, steps=[0, 1, 2, 3], values=values)


def test_lines_values_and_error_bars():
    fig = viz.curves([_curve("pointer3"), _curve("copy", lo_hi=False)], "accuracy")
    assert [t.name for t in fig.data] == ["pointer3", "copy"] and [t.mode for t in fig.data] == ["lines+markers"] * 2
    assert list(fig.data[0].x) == [0, 1, 2, 3] and list(fig.data[0].y) == [0.0, 0.25, 0.5, 0.9]
    np.testing.assert_allclose(fig.data[0].error_y.array, [0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(fig.data[0].error_y.arrayminus, [0.05] * 4)
    assert fig.data[1].error_y.array is None
    assert fig.layout.title.text == "necessity: accuracy" and fig.layout.xaxis.title.text == "thoughts run before <eot>"
    assert fig.layout.yaxis.title.text == "accuracy"


def test_kinds_titles_and_errors():
    fig = viz.curves([_curve("a", kind="early_exit")], "logp", title="mine")
    assert fig.layout.xaxis.title.text == "thoughts seen (0 = at <bot>)" and fig.layout.title.text == "mine"
    assert viz.curves([_curve("a", kind="other")], "logp").layout.xaxis.title.text == "thoughts"
    with pytest.raises(ValueError, match="pass at least one curve"):
        viz.curves([], "accuracy")
    with pytest.raises(ValueError, match="metric='f1' is not in curve 'a'; it has"):
        viz.curves([_curve("a")], "f1")
