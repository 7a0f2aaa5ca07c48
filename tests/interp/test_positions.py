"""interp.positions: labels, per-batch plans for left/right padding, alias resolution on stored caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.positions import (
    Plan,
    check_plain_labels,
    codi_labels,
    codi_plan,
    gather_indices,
    plain_labels,
    plain_plan,
    resolve_alias,
    shorten,
)


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


def test_shorten_keeps_short_lists_whole():
    assert shorten(["a", "b"]) == "a, b"
    assert shorten([f"q_{i}" for i in range(8)]) == ", ".join(f"q_{i}" for i in range(8))
    assert shorten([f"q_{i}" for i in range(9)]) == "q_0, q_1, q_2, q_3, ..., q_6, q_7, q_8"


def test_codi_labels_expand_kinds_and_refuse_what_the_run_lacks():
    assert codi_labels("all", n_q=2, num_latents=1, n_resp=2) == ["q_0", "q_1", "bot", "latent_0", "eot", "resp_0",
                                                                  "resp_1"]
    assert codi_labels(["question", "q[-1]", "response"], 2, 3, 1) == ["q_0", "q_1", "q[-1]", "resp_0"]
    for bad, msg in ((["q_2"], "longest question has 2 tokens"), (["resp_1"], "at most 1 response positions"),
                     (["q[-0]"], r"q\[-k\] needs k >= 1"), (["tok_0"], "Plain-model labels"),
                     (["bot", "bot"], "repeat"), ([3], "take label strings")):
        with pytest.raises((ValueError, TypeError), match=msg):
            codi_labels(bad, 2, 3, 1)


def test_codi_plan_points_at_each_labels_forward_call_and_column():
    import codi

    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    run = cm.run(["1 + 2 = ?", "Sam has 7 coins."], ["3", "17 eggs"])
    labels = ["q_0", "q[-1]", "bot", "latent_0", "latent_1", "eot", "resp_0", "resp_1"]
    plan = codi_plan(run, labels)
    mask = run.segments[0].attention_mask
    width, n_q = mask.shape[1], (mask.sum(1) - 1).tolist()  # real question tokens, without <bot>
    segs = {s.kind: s for s in run.segments}
    assert plan.call == [0, 0, 0, 1, 2, segs["eot"].call, segs["response"].call, segs["response"].call]
    for b in range(2):
        assert plan.col[b, :3].tolist() == [width - 1 - n_q[b], width - 2, width - 1]
    assert plan.col[:, 5].tolist() == [segs["eot"].offset] * 2
    # "3" is one response token, "17 eggs" more: resp_1 exists for the second sample only
    assert plan.valid[:, 7].tolist() == [False, True] and plan.valid[:, :7].all()
