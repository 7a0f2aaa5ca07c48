"""codi.train_config: TrainConfig's JSON round trip, TrainRecord, and the checks codi.train runs before any work
(model, problems, output folder and resume flag)."""

from __future__ import annotations

import pytest

import codi
from codi import data
from codi.train_config import TrainConfig, TrainRecord, check_model, check_problems, check_run
from codi.train_state import train_dir


def test_config_roundtrip(tmp_path):
    cfg = TrainConfig(lr=1e-3, batch_size=4, inject_nan_steps=[3], betas=(0.8, 0.9))
    cfg.save(tmp_path / "t.json")
    assert TrainConfig.load(tmp_path / "t.json") == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_record_of_a_run_reads_back_from_its_folder_and_its_file(tmp_path):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2, lora_dropout=0.0))
    rec = codi.train(cm, data.arithmetic(8, seed=0), tmp_path / "run", max_steps=2, batch_size=4, progress=False)
    final = TrainRecord.load(tmp_path / "run")
    live = TrainRecord.load(train_dir(tmp_path / "run") / "train_record.json")
    assert final.to_dict() == live.to_dict()
    assert final.losses == rec.losses and [e["step"] for e in final.losses] == [1, 2]
    assert (final.step, final.total_steps, final.finished, final.world_size, final.grad_accum) == (2, 2, True, 1, 1)
    assert final.config == TrainConfig(max_steps=2, batch_size=4, progress=False).to_dict()
    assert final.codi_config == cm.config.to_dict()


def test_checks_of_model_problems_and_run_folder(tmp_path):
    problems = [dict(question="1+2?", cot="<<1+2=3>>", answer="3")] * 3
    check_problems(problems, batch_size=3)
    with pytest.raises(ValueError, match=r"batch_size=4: is more than the 3 problems given"):
        check_problems(problems, batch_size=4)
    with pytest.raises(ValueError, match=r"problems\[1\]=.*lacks \['answer'\]"):
        check_problems([problems[0], dict(question="q", cot="c")], batch_size=1)
    with pytest.raises(ValueError, match="cm='tiny-gpt2': must be a CODIModel"):
        check_model("tiny-gpt2")
    assert check_run(tmp_path / "new", resume=False) == []
    with pytest.raises(ValueError, match="nothing to resume"):
        check_run(tmp_path / "new", resume=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("a user's file")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        check_run(tmp_path / "full", resume=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]      # the checks write nothing
