"""interp.curves: the older home of the thought curves keeps working; every name is interp.interventions.curves'
own (their behaviour: tests/interp/interventions/test_curves.py). Named test_interp_curves.py, not test_curves.py:
the interventions' test_curves.py holds that name, and pytest imports test files by basename."""

from __future__ import annotations

import interp.curves as curves
import interp.interventions.curves as home


def test_every_name_is_the_interventions_own():
    assert curves.__all__ == home.__all__ == ["Curve", "necessity", "early_exit", "wilson"]
    for name in curves.__all__:
        assert getattr(curves, name) is getattr(home, name), name
