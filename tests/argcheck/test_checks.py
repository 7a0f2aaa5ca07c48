"""argcheck: each validator refuses what it must (naming the argument, the value and the fix) and returns the
normalised value otherwise. BadArgument is both a ValueError and a TypeError."""

from __future__ import annotations

import math

import pytest

from argcheck import (
    BadArgument,
    check_bool,
    check_choice,
    check_float,
    check_floats,
    check_int,
    check_ints,
    check_layers,
    check_new_path,
    check_out_folder,
    check_path_exists,
    check_str,
    check_strings,
)

BAD = [
    pytest.param(lambda t: check_int("n", True), "n=True", id="int-bool"),
    pytest.param(lambda t: check_int("n", 1.5), "n=1.5", id="int-float"),
    pytest.param(lambda t: check_int("n", "3"), "n='3'", id="int-text"),
    pytest.param(lambda t: check_int("n", -1, min=0), "n=-1", id="int-below-min"),
    pytest.param(lambda t: check_int("n", 9, min=0, max=8), "between 0 and 8", id="int-above-max"),
    pytest.param(lambda t: check_float("lr", math.nan), "lr=nan", id="float-nan"),
    pytest.param(lambda t: check_float("lr", math.inf), "lr=inf", id="float-inf"),
    pytest.param(lambda t: check_float("lr", "1e-3"), "lr='1e-3'", id="float-text"),
    pytest.param(lambda t: check_float("lr", False), "lr=False", id="float-bool"),
    pytest.param(lambda t: check_float("lr", 0, min=0, min_open=True), "lr=0", id="float-open-min"),
    pytest.param(lambda t: check_bool("progress", 1), "progress=1", id="bool-int"),
    pytest.param(lambda t: check_bool("progress", "yes"), "progress='yes'", id="bool-text"),
    pytest.param(lambda t: check_str("name", ""), "name=''", id="str-empty"),
    pytest.param(lambda t: check_str("name", "   "), "name='   '", id="str-blank"),
    pytest.param(lambda t: check_str("name", 3), "name=3", id="str-int"),
    pytest.param(lambda t: check_choice("side", "up", ["left", "right"]), "'left', 'right'", id="choice-unknown"),
    pytest.param(lambda t: check_choice("k", True, [1, 2]), "k=True", id="choice-bool-for-int"),
    pytest.param(lambda t: check_strings("prompts", "abc"), "prompts='abc'", id="strings-one-string"),
    pytest.param(lambda t: check_strings("prompts", []), "prompts=[]", id="strings-empty"),
    pytest.param(lambda t: check_strings("prompts", ["a", 1]), "prompts[1]=1", id="strings-item"),
    pytest.param(lambda t: check_floats("Cs", []), "Cs=[]", id="floats-empty"),
    pytest.param(lambda t: check_floats("Cs", [1, 0], min=0, min_open=True), "Cs[1]=0", id="floats-item"),
    pytest.param(lambda t: check_floats("Cs", 1.0), "Cs=1.0", id="floats-scalar"),
    pytest.param(lambda t: check_ints("steps", "1,2"), "steps='1,2'", id="ints-text"),
    pytest.param(lambda t: check_ints("steps", [1, 0], min=1), "steps[1]=0", id="ints-item"),
    pytest.param(lambda t: check_layers("layers", "10", 30), "layers=[10]", id="layers-text"),
    pytest.param(lambda t: check_layers("layers", [], 2), "at least one", id="layers-empty"),
    pytest.param(lambda t: check_layers("layers", [5], 2), "[5] are out of range", id="layers-out-of-range"),
    pytest.param(lambda t: check_layers("layers", [1.0], 2), "layers=[1.0]", id="layers-float"),
    pytest.param(lambda t: check_out_folder("out", ""), "out=''", id="out-folder-empty"),
    pytest.param(lambda t: check_out_folder("out", t / "f.txt"), "existing file", id="out-folder-is-file"),
    pytest.param(lambda t: check_out_folder("out", t / "f.txt" / "x"), "under an existing file",
                 id="out-folder-under-file"),
    pytest.param(lambda t: check_path_exists("path", t / "missing.txt"), "none is there", id="path-missing"),
    pytest.param(lambda t: check_path_exists("path", "x" * 5000), "none is there", id="path-too-long"),
    pytest.param(lambda t: check_path_exists("path", t, kind="file"), "existing file", id="path-folder-for-file"),
    pytest.param(lambda t: check_new_path("out", t), "existing folder", id="new-path-is-folder"),
    pytest.param(lambda t: check_new_path("out", ""), "out=''", id="new-path-empty"),
]


@pytest.mark.parametrize("call, named", BAD)
def test_refused(refused, tmp_path, call, named):
    (tmp_path / "f.txt").write_text("a user's file")
    msg = refused(lambda: call(tmp_path), BadArgument, named)
    assert ". Fix: " in msg or ": must" in msg


def test_accepted_values_are_normalised(tmp_path):
    assert check_int("n", 3, min=1) == 3 and check_float("lr", 1) == 1.0 and isinstance(check_float("x", 1), float)
    assert check_layers("layers", [2, 0, 2], 2) == [0, 2] and check_layers("layers", "all", 1) == [0, 1]
    assert check_floats("Cs", (1, 2)) == [1.0, 2.0] and check_ints("s", range(2)) == [0, 1]
    assert check_out_folder("out", tmp_path / "new").name == "new"
