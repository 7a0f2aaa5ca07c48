"""interp.positions: labels, per-batch plans for left/right padding, alias resolution on stored caches."""

from __future__ import annotations

import numpy as np
import pytest

from interp.positions import check_plain_labels, plain_labels, plain_plan, resolve_alias


def test_plain_labels_union_and_ints():
    assert plain_labels("all", [2, 4, 3]) == ["tok_0", "tok_1", "tok_2", "tok_3"]
    assert plain_labels(["last", 2, "prompt[-3]"], [1]) == ["last", "tok_2", "prompt[-3]"]
    assert plain_labels("last", [1]) == ["last"]


@pytest.mark.parametrize(
    "bad,msg",
    [
        ("first", "unknown position label"),
        ("tok_-1", "unknown"),
        ("prompt[-0]", "unknown"),
        (-1, "negative"),
        (1.5, "label string or an int"),
    ],
)
def test_bad_labels(bad, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        check_plain_labels([bad])


def test_repeated_label_refused():
    with pytest.raises(ValueError, match="repeat"):
        check_plain_labels(["last", "last"])


@pytest.mark.parametrize(
    "side,expected_col", [("left", [[3, 4, 3, 0], [0, 4, 3, 4]]), ("right", [[0, 1, 0, 0], [0, 4, 3, 4]])]
)
def test_plain_plan_points_at_real_tokens(side, expected_col):
    plan = plain_plan(["tok_0", "last", "prompt[-2]", "tok_4"], lengths=[2, 5], seq_len=5, padding_side=side)
    assert plan.call == [0, 0, 0, 0]
    assert plan.valid.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert plan.col.tolist() == expected_col


def test_prompt_back_beyond_length_is_invalid():
    plan = plain_plan(["prompt[-3]"], lengths=[2, 3], seq_len=3, padding_side="left")
    assert plan.valid.tolist() == [[False], [True]] and plan.col.tolist() == [[0], [0]]


def test_resolve_alias_on_stored_tok_cells():
    stored = ["tok_0", "tok_1", "tok_2"]
    valid = np.array([[True, True, False], [True, True, True], [True, False, False]])
    cols, found = resolve_alias("last", stored, valid)
    assert cols.tolist() == [1, 2, 0] and found.all()
    cols, found = resolve_alias("prompt[-2]", stored, valid)
    assert found.tolist() == [True, True, False] and cols[:2].tolist() == [0, 1]
    cols, found = resolve_alias("tok_2", stored, valid)
    assert cols.tolist() == [2, 2, 2] and found.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="only some"):
        resolve_alias("last", ["tok_0", "tok_2"], valid[:, :2])
    with pytest.raises(ValueError, match="unknown position label"):
        resolve_alias("middle", stored, valid)
