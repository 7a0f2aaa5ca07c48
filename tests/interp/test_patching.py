"""interp.patching: the older home of the intervention calls keeps working; every name is interp.interventions' own
(their behaviour: tests/interp/interventions/)."""

from __future__ import annotations

import interp.interventions as interventions
import interp.patching as patching


def test_every_name_is_the_interventions_own():
    assert set(patching.__all__) <= set(interventions.__all__)
    for name in patching.__all__:
        assert getattr(patching, name) is getattr(interventions, name), name
    assert patching.INPUT == -1 and patching.MODES == ("zero", "mean", "resample")
