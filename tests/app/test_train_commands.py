"""`codi-lens train` and `codi-lens eval` (app/train_commands.py) on tiny-llama: the problems each command reads,
a 2-step training run built from a CODIConfig file, --set, a TrainConfig file and flags, and its evaluation on the
held-out split, recomputed with `codi.evaluate`."""

from __future__ import annotations

import argparse
import json

import pytest

import codi
from app.cli import main
from app.train_commands import codi_problems
from codi import data
from codi.train import TrainConfig, TrainRecord, train_dir


def _args(**over) -> argparse.Namespace:
    return argparse.Namespace(**{"data": None, "arith": None, "arith_steps": "2-3", "data_seed": 0, **over})


def test_codi_problems_generates_or_reads(tmp_path):
    made = codi_problems(_args(arith=6, arith_steps="2", data_seed=4))
    assert made == data.arithmetic(6, steps=(2, 2), seed=4) and {p.steps for p in made} == {2}
    assert codi_problems(_args()) == data.arithmetic(2000, steps=(2, 3), seed=0)        # the default: 2000
    path = data.save(made[:3], tmp_path / "p.jsonl")
    assert codi_problems(_args(data=str(path))) == data.load(path)
    with pytest.raises(ValueError, match="pass either --data FILE or --arith N, not both"):
        codi_problems(_args(data=str(path), arith=4))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`codi-lens train` for 2 steps on 12 generated problems, a quarter held out."""
    d = tmp_path_factory.mktemp("train")
    (d / "codi.json").write_text(json.dumps({"base_model": "tiny-llama", "num_latents": 2, "lora_r": 4}))
    TrainConfig(max_steps=5, lr=1e-3, batch_size=4).save(d / "train.json")
    out = d / "run"
    argv = ["train", "--codi-config", str(d / "codi.json"), "--set", "lora_r=2", "--config", str(d / "train.json"),
            "--max-steps", "2", "--batch-size", "2", "--arith", "12", "--arith-steps", "2", "--test-frac", "0.25",
            "--out", str(out), "--no-progress"]
    return out, main(argv)


def test_train_builds_the_configs_from_files_and_flags(trained):
    out, rc = trained
    assert rc == 0
    cm = codi.CODIModel.from_pretrained(out)
    assert (cm.config.base_model, cm.config.num_latents, cm.config.lora_r) == ("tiny-llama", 2, 2)   # --set wins
    rec = TrainRecord.load(out)
    assert rec.step == 2 and rec.finished                                   # --max-steps over the file's 5
    cfg = TrainConfig.load(out / "train_config.json")                       # the file's lr, the flags' sizes
    assert (cfg.lr, cfg.batch_size, cfg.max_steps, cfg.progress) == (1e-3, 2, 2, False)
    train, held = data.split(data.arithmetic(12, steps=(2, 2), seed=0), test_frac=0.25, seed=0)
    assert data.load(train_dir(out) / "heldout.jsonl") == held and len(held) == 3


def test_eval_reads_the_held_out_split_and_matches_evaluate(trained, tmp_path, capsys):
    out, _ = trained
    capsys.readouterr()
    res_file = tmp_path / "res.json"
    assert main(["eval", "--ckpt", str(out), "--modes", "codi,no_cot", "--max-new-tokens", "4", "--batch-size", "2",
                 "--json", str(res_file)]) == 0
    printed = capsys.readouterr().out.splitlines()
    got = json.loads(res_file.read_text())
    held = data.load(train_dir(out) / "heldout.jsonl")
    ref = codi.evaluate(codi.CODIModel.from_pretrained(out), held, modes=("codi", "no_cot"), max_new_tokens=4,
                        batch_size=2, progress=False)
    assert list(got) == ["codi", "no_cot"]
    for mode, r in ref.items():
        for k in ("accuracy", "correct", "n", "predictions", "examples"):
            assert got[mode][k] == r[k], (mode, k)
    assert printed[0].split() == ["mode", "accuracy", "correct", "n"]
    assert printed[1:] == [f"{m:<8} {r['accuracy'] * 100:>8.1f}% {r['correct']:>8} {r['n']:>5}" for m, r in ref.items()]
    assert main(["eval", "--ckpt", str(out), "--arith", "5", "--limit", "2", "--modes", "codi"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "2"        # --limit: the first 2 of --arith 5


def test_eval_without_data_or_held_out_file_says_what_to_pass(tmp_path, capsys):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=2))
    folder = cm.save_pretrained(tmp_path / "ckpt")
    assert main(["eval", "--ckpt", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "no --data given and no held-out file" in err and "pass --data FILE or --arith N" in err
