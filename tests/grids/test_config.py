"""grids.config.GridConfig: an open dict whose well-known keys are typed, checked whenever they are set."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from grids import TYPED_KEYS, GridConfig, ResultGrid


def test_typed_config():
    c = GridConfig(kind="steering", n_layers=np.int64(30), baseline={"answer_accuracy": 0.5})
    assert c.n_layers == 30 and type(c.n_layers) is int and c.model is None and c["baseline"]["answer_accuracy"] == 0.5
    assert c == {"kind": "steering", "n_layers": 30, "baseline": {"answer_accuracy": 0.5}}
    for key, bad in (("n_layers", 2.5), ("n_layers", True), ("kind", 3), ("model", ["x"])):
        with pytest.raises(TypeError, match=f"grid config '{key}' must be"):
            GridConfig({key: bad})
    c.update(free=[1, 2])
    with pytest.raises(TypeError, match="'n' must be an int"):
        c.update(n="3")
    with pytest.raises(AttributeError, match="config\\['free'\\]"):
        c.free  # noqa: B018
    g = ResultGrid([0], ["a"], {}, config={"kind": "ablation"})
    assert isinstance(g.config, GridConfig) and g.config.kind == "ablation"
    with pytest.raises(TypeError, match="'n_layers' must be an int"):
        g.config["n_layers"] = "many"


def test_every_way_of_setting_a_key_checks_it_and_copies_stay_typed():
    c = GridConfig(n=1)
    for set_bad in (lambda: c.__setitem__("n", "1"), lambda: c.update({"n": 1.5}), lambda: c.setdefault("kind", 3),
                    lambda: GridConfig(d_model=[64])):
        with pytest.raises(TypeError, match="must be"):
            set_bad()
    assert c == {"n": 1} and c.setdefault("n", 5) == 1 and c.setdefault("d_model", 64) == 64
    assert type(c.copy()) is GridConfig and c.copy() == c and c.copy() is not c
    back = pickle.loads(pickle.dumps(c))
    assert type(back) is GridConfig and back == c
    assert all(getattr(GridConfig(), key) is None for key in TYPED_KEYS)
    assert GridConfig(n_layers=None, kind=None).n_layers is None
