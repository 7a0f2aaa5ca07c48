"""grids.finding.Finding: severities, cells as (int, str), the JSON form and the one-line text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grids import SEVERITIES, Finding


def test_json_round_trip_and_cells_normalised():
    f = Finding("identical_features", "latent_0 equals latent_1", "error", [(np.int64(3), "latent_0"), [4, 7]])
    assert f.cells == [(3, "latent_0"), (4, "7")] and type(f.cells[0][0]) is int
    d = json.loads(json.dumps(f.to_dict()))
    assert d == {"kind": "identical_features", "message": "latent_0 equals latent_1", "severity": "error",
                 "cells": [[3, "latent_0"], [4, "7"]]}
    assert Finding.from_dict(d) == f
    assert Finding.from_dict({"kind": "k", "message": "m"}) == Finding("k", "m", "warning", [])


def test_text_names_severity_kind_and_at_most_six_cells():
    assert str(Finding("no_effect", "flat", "info")) == "INFO no_effect: flat"
    many = Finding("leak", "text predicts the label", "warning", [(layer, "q_0") for layer in range(9)])
    assert str(many) == ("WARNING leak: text predicts the label [L0/q_0, L1/q_0, L2/q_0, L3/q_0, L4/q_0, L5/q_0 "
                         "(+3 more)]")


def test_unknown_severity_is_refused():
    assert SEVERITIES == ("error", "warning", "info")
    with pytest.raises(ValueError, match="severity 'fatal' is not one of"):
        Finding("x", "y", "fatal")
