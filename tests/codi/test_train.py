"""Tests for codi.train: losses go down, exact resume after a kill, the divergence guard, two processes == one.

Tolerances: resume and 2-process runs are compared to an uninterrupted single-process run step by step with a
relative tolerance of 1e-5 on every loss part (float32 sums in another order; in practice they agree to ~1e-7).
"""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import codi
from codi import data
from codi.train import TrainRecord, default_lr, lr_factor, train, train_dir
from codi.train_state import list_checkpoints

KEYS = ("total", "teacher_ce", "student_ce", "distill", "latent_distill")
CODI_KW = dict(num_latents=3, lora_r=8, lora_dropout=0.0)  # no dropout: runs in different processes must agree
CLI_SET = ["--set", "num_latents=3", "--set", "lora_r=8", "--set", "lora_dropout=0.0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


def model(base="tiny-llama"):
    return codi.CODIModel.from_config(codi.CODIConfig(base_model=base, **CODI_KW))


def curve(rec: TrainRecord, key="total") -> np.ndarray:
    return np.array([entry[key] for entry in rec.losses])


def test_lr_table_and_schedule():
    assert default_lr(124_000_000) == pytest.approx(3e-3)
    assert default_lr(1_000) == 3e-3  # tiny models: the GPT-2 value, never more
    assert default_lr(3_200_000_000) == pytest.approx(3e-3 * math.sqrt(124 / 3200))
    assert default_lr(10**15) == 1e-5
    assert [round(lr_factor(s, 100, 0.05, 0.0), 4) for s in (0, 4, 5, 100)] == [0.2, 1.0, 1.0, 0.0]
    assert lr_factor(50, 100, 0.0, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # cosine midpoint


def test_losses_finite_and_decreasing_then_saved_model_loads(tmp_path):
    cm = model("tiny-gpt2")
    probs = data.arithmetic(160, seed=0)
    rec = train(cm, probs, tmp_path / "run", max_steps=16, batch_size=4, lr=1e-2, checkpoint_every=8,
                progress=False)
    assert rec.finished and rec.step == 16 and len(rec.losses) == 16 and rec.world_size == 1
    assert (curve(rec, "latent_distill") == 0).all()  # off by default (latent_distill_weight=0)
    for k in KEYS[:-1]:
        c = curve(rec, k)
        assert np.isfinite(c).all(), k
        assert c[-5:].mean() < 0.97 * c[:3].mean(), (k, c[:3], c[-5:])  # every part goes down
    back = codi.CODIModel.from_pretrained(tmp_path / "run")
    q = [p.question for p in probs[:3]]
    assert back.generate(q, max_new_tokens=4).texts == cm.generate(q, max_new_tokens=4).texts
    saved = json.loads((tmp_path / "run" / "train_record.json").read_text())
    assert saved["losses"][-1]["total"] == rec.losses[-1]["total"]
    kept = [c.name for c in list_checkpoints(train_dir(tmp_path / "run"))]
    assert kept == ["step_000000", "step_000008", "step_000016"]  # step 0 is always kept for rollbacks


def _cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "train", "--base", "tiny-llama", *CLI_SET, "--arith", "160",
            "--batch-size", "8", "--out", str(out), "--no-progress", *extra]


def test_resume_after_kill_gives_the_same_losses(tmp_path):
    settings = dict(max_steps=10, batch_size=8, checkpoint_every=3)
    full = train(model(), data.arithmetic(160, seed=0), tmp_path / "full", progress=False, **settings)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(out, "--max-steps", "10", "--checkpoint-every", "3"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list_checkpoints(train_dir(out))[1:] and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # wait for the first checkpoint after step 0
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    killed_at = list_checkpoints(train_dir(out))[-1].name
    assert killed_at != "step_000010", "the run finished before it could be killed"
    assert not out.exists()  # the final model is only written at the end

    rec = train(model(), data.arithmetic(160, seed=0), out, resume=True, progress=False, **settings)
    resumes = [e for e in rec.events if e["kind"] == "resume"]
    assert len(resumes) == 1 and 3 <= resumes[0]["step"] < 10
    assert rec.step == 10
    for k in KEYS:
        np.testing.assert_allclose(curve(rec, k), curve(full, k), rtol=1e-5, atol=0, err_msg=k)


def test_guard_rolls_back_on_injected_nan(tmp_path):
    rec = train(model(), data.arithmetic(160, seed=0), tmp_path / "nan", max_steps=10, batch_size=8,
                checkpoint_every=3, inject_nan_steps=[5], progress=False)
    rolls = [e for e in rec.events if e["kind"] == "rollback"]
    assert len(rolls) == 1
    assert rolls[0]["step"] == 5 and rolls[0]["to_step"] == 3 and rolls[0]["lr_scale"] == 0.5
    assert rolls[0]["discarded_losses"][-1] == "nan" and "non-finite" in rolls[0]["reason"]
    assert rec.step == 10 and np.isfinite(curve(rec)).all()
    for e in rec.losses:  # the schedule continues at half the learning rate after the rollback
        scale = 1.0 if e["step"] <= 3 else 0.5
        assert e["lr"] == pytest.approx(rec.lr * scale * lr_factor(e["step"] - 1, 10, 0.03, 0.0))
    on_disk = json.loads((tmp_path / "nan" / "train_record.json").read_text())
    assert on_disk["events"][0]["kind"] == "rollback"


def test_guard_recovers_from_absurd_lr_and_gives_up_when_it_cannot(tmp_path):
    probs = data.arithmetic(160, seed=0)
    rec = train(model(), probs, tmp_path / "hot", lr=100.0, max_steps=10, batch_size=8, checkpoint_every=2,
                guard_patience=2, guard_min_steps=2, rollback_lr_factor=0.01, progress=False)
    rolls = [e for e in rec.events if e["kind"] == "rollback"]
    assert rolls, "an lr of 100 must trip the guard"
    assert rolls[-1]["lr"] <= 100.0 * 0.01
    assert rec.step == 10 and np.isfinite(curve(rec)).all()
    assert curve(rec)[-3:].mean() < curve(rec)[0]  # recovered: below the starting loss
    with pytest.raises(RuntimeError, match="diverged 2 times"):
        train(model(), probs, tmp_path / "hopeless", lr=1e4, max_steps=10, batch_size=8, checkpoint_every=2,
              guard_patience=1, guard_min_steps=1, rollback_lr_factor=1.0, max_rollbacks=1, progress=False)
    rec = TrainRecord.load(train_dir(tmp_path / "hopeless"))
    assert not rec.finished and len([e for e in rec.events if e["kind"] == "rollback"]) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_match_one_process(tmp_path):
    # `accelerate launch --cpu` starts ONE process unless MPI is set up; torchrun-style launch with the CPU flag
    # in the environment gives two gloo processes.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "app.cli"]
    cmd = launch + _cli(tmp_path / "two", "--max-steps", "4", "--checkpoint-every", "2")[3:]
    res = subprocess.run(cmd, env={**ENV, "ACCELERATE_USE_CPU": "1"}, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    two = TrainRecord.load(tmp_path / "two")
    assert two.world_size == 2 and two.grad_accum == 1
    one = train(model(), data.arithmetic(160, seed=0), tmp_path / "one", max_steps=4, batch_size=8,
                micro_batch_size=4, checkpoint_every=2, progress=False)
    assert one.world_size == 1 and one.grad_accum == 2
    for k in KEYS:
        np.testing.assert_allclose(curve(two, k), curve(one, k), rtol=1e-5, atol=0, err_msg=k)


def test_bad_input_raises_before_writing(tmp_path):
    probs = data.arithmetic(40, seed=0)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        train(model(), probs, busy, max_steps=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="not a multiple of micro_batch_size"):
        train(model(), probs, tmp_path / "a", max_steps=1, batch_size=8, micro_batch_size=3, progress=False)
    with pytest.raises(ValueError, match=r"problems=\[\]: must be a non-empty list"):
        train(model(), [], tmp_path / "a", max_steps=1, progress=False)
    assert not (tmp_path / "a").exists() and not train_dir(tmp_path / "a").exists()
    train(model(), probs, tmp_path / "b", max_steps=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(model(), probs, tmp_path / "b", max_steps=2, batch_size=8, progress=False)
    with pytest.raises(ValueError, match=r"training settings differ.*'lr'"):
        train(model(), probs, tmp_path / "b", resume=True, max_steps=2, batch_size=8, lr=0.5, progress=False)


def test_kill_during_the_final_save_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    """kill -9 while the trained model is being written: `out` never exists half-written, only a project temporary
    beside it; `--resume` then writes the complete model and removes the temporary."""
    out = tmp_path / "final"
    proc = subprocess.Popen(_cli(out, "--max-steps", "2", "--checkpoint-every", "100"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, stray = time.time() + 180, []
    while not stray and proc.poll() is None and time.time() < deadline:
        stray = [p for p in os.scandir(tmp_path) if p.name.startswith(".codi-lens-final.")]
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert stray and proc.returncode == -signal.SIGKILL, f"not killed during the final save: {err.decode()[-2000:]}"
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".codi-lens-final.")]

    res = subprocess.run(_cli(out, "--max-steps", "2", "--checkpoint-every", "100", "--resume"), env=ENV,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "final-train"]   # nothing stray remains
    from codi.checkpoint import verify_checksums

    assert verify_checksums(out)                                                     # every file complete
    rec = TrainRecord.load(out)
    assert rec.finished and rec.step == 2 and [e["kind"] for e in rec.events] == ["resume"]
    codi.CODIModel.from_pretrained(out)
