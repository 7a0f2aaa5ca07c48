"""interp.positions: labels, per-batch plans for left/right padding, alias resolution on stored caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.positions import Plan, check_plain_labels, gather_indices, plain_labels, plain_plan, resolve_alias


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


def _plan():
    """3 labels over 2 forward calls, 2 samples; sample 1 lacks label 'c'."""
    col = torch.tensor([[2, 0, 1], [3, 1, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    return Plan(["a", "b", "c"], call=[0, 1, 0], col=col, valid=valid)


def test_gather_indices_group_the_plan_by_forward_call():
    cells = gather_indices(_plan())
    assert [c.call for c in cells] == [0, 1]
    assert cells[0].pos.tolist() == [0, 2] and cells[0].col.tolist() == [[2, 1], [3, 0]]
    assert cells[1].pos.tolist() == [1] and cells[1].col.tolist() == [[0], [1]]


def test_gather_equals_indexing_each_cell():
    torch.manual_seed(0)
    calls = [torch.randn(2, 5, 4), torch.randn(2, 2, 4)]  # [batch, seq of the call, d]
    plan = _plan()
    got = plan.gather(calls)
    for b in range(2):
        for p in range(3):
            want = calls[plan.call[p]][b, plan.col[b, p]] if plan.valid[b, p] else torch.zeros(4)
            assert torch.equal(got[b, p], want), (b, p)
    # a recording that starts at call 1 (first_call), into a view of a [batch, layer, pos, d] buffer (out=)
    buf = torch.full((2, 2, 3, 4), 7.0)
    sub = plan.take(["b"])
    sub.gather({1: calls[1]}, out=buf[:, 1, :1])
    assert torch.equal(buf[:, 1, 0], got[:, 1]) and bool((buf[:, 0] == 7).all())
    tiled = plan.tile(2).gather([c.repeat(2, 1, 1) for c in calls])
    assert torch.equal(tiled, got.repeat(2, 1, 1))
    assert torch.equal(plan.take(["c", "a"]).gather(calls), got[:, [2, 0]])
