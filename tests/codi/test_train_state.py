"""codi.train_state: a checkpoint restores parameters, optimizer and RNG exactly; listing, pruning, checksums,
setting aside and marking bad. The oracle: the same optimizer step recomputed from the restored state."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import torch
from codi_fixtures import PROBLEMS, make_model

from codi import train_state as ts

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


def _state(step: int, good: bool = True) -> dict:
    return dict(step=step, lr_scale=1.0, guard={}, injected=[], good=good, losses=[], events=[], wall_s=0.0,
                train_config={}, codi_config={})


def _save(run, cm, params, opt, step: int, keep: int = 0, protect=()) -> None:
    final = ts.checkpoint_dir(run, step)
    tmp = ts.temporary_dir(final, clean=True)
    ts.write_checkpoint_tmp(tmp, cm=cm, trainable=params, optimizer=opt, state=_state(step), rank=0, is_main=True)
    ts.finish_checkpoint(tmp, final, keep, protect=list(protect))


def _step(cm, params, opt, batch) -> tuple[dict[str, torch.Tensor], tuple]:
    """One optimizer step whose update depends on the torch, Python and numpy generators too."""
    loss = cm.loss(batch)["total"] + 1e-3 * sum((p * torch.randn_like(p)).sum() for p in params.values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {n: p.detach().clone() for n, p in params.items()}, (random.random(), float(np.random.rand()))


def test_a_checkpoint_restores_parameters_optimizer_and_generators_exactly(tmp_path):
    cm = make_model("tiny-llama")
    cm.train()
    params = cm.trainable_parameters()
    opt = torch.optim.AdamW([{"params": [p for p in params.values() if p.ndim >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params.values() if p.ndim < 2], "weight_decay": 0.0}], lr=1e-2)
    batch = cm.make_batch(PROBLEMS)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    for _ in range(2):
        _step(cm, params, opt, batch)
    _save(tmp_path, cm, params, opt, 2)
    after, draws = _step(cm, params, opt, batch)                   # the step after the checkpoint, uninterrupted
    _step(cm, params, opt, batch)                                   # and one more, so everything moved on
    state = ts.load_checkpoint(ts.checkpoint_dir(tmp_path, 2), params=params, optimizer=opt, rank=0)
    assert state["step"] == 2 and set(ts.STATE_KEYS) <= set(state)
    again, draws_again = _step(cm, params, opt, batch)
    assert draws_again == draws
    for name in after:
        assert torch.equal(again[name], after[name]), name


def test_listing_pruning_checksums_set_aside_and_mark_bad(tmp_path):
    cm = make_model("tiny-gpt2")
    params = cm.trainable_parameters()
    opt = torch.optim.AdamW([{"params": [p for p in params.values() if p.ndim >= 2]},
                             {"params": [p for p in params.values() if p.ndim < 2]}])
    run = ts.train_dir(tmp_path / "out")
    assert run.name == "out-train" and ts.list_checkpoints(run) == []
    for step in (0, 1, 2):
        _save(run, cm, params, opt, step, keep=1, protect=[ts.checkpoint_dir(run, 0)])
    assert [c.name for c in ts.list_checkpoints(run)] == ["step_000000", "step_000002"]   # newest + protected
    ts.temporary_dir(ts.checkpoint_dir(run, 3), clean=False).mkdir()                       # a killed save
    assert [c.name for c in ts.list_checkpoints(run)] == ["step_000000", "step_000002"]

    newest = ts.checkpoint_dir(run, 2)
    recorded = ts.verify_checkpoint(newest)["checksums"]
    assert "trainable.safetensors" in recorded and "model/codi_config.json" in recorded and "state.json" not in recorded
    ts.mark_bad(newest)
    assert ts.read_state(newest)["good"] is False and ts.verify_checkpoint(newest)["good"] is False
    (newest / "rng_0.json").unlink()
    with pytest.raises(ValueError, match=r"rng_0.json is missing from the checkpoint"):
        ts.verify_checkpoint(newest)
    copy = shutil.copytree(newest, run / "copy")
    assert ts.set_aside(newest).name == "step_000002.damaged"
    shutil.move(copy, newest)
    assert ts.set_aside(newest).name == "step_000002.damaged-2"
    assert [c.name for c in ts.list_checkpoints(run)] == ["step_000000"]
