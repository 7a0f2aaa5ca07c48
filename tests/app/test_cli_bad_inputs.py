"""Bad flags of the `codi-lens` command line: each is one line on stderr naming the flag (no traceback), exit status
2, nothing written to the working folder, and before any model loads or any sweep runs. (`--debug`, which shows the
traceback instead: test_cli.py.)
"""

from __future__ import annotations

import json

import pytest

from app.cli import main


def _prep_cache_like(t):
    (t / "cache").mkdir()


def _prep_file(t):
    (t / "notes.txt").write_text("a user's file")


def _prep_grid(t):
    (t / "p").mkdir()
    (t / "p" / "grid.json").write_text("{}")


def _prep_ckpt(t):
    (t / "ckpt").mkdir()


def _prep_bad_json(t):
    (t / "train.json").write_text('{"lr": ')


def _prep_list_json(t):
    (t / "codi.json").write_text(json.dumps([1, 2]))


TRAIN = ["train", "--base", "tiny-llama", "--out", "run"]
CASES = [
    # train
    ("train-max-steps-negative", [*TRAIN, "--max-steps", "-1"], "--max-steps -1"),
    ("train-max-steps-zero", [*TRAIN, "--max-steps", "0"], "--max-steps 0"),
    ("train-max-steps-text", [*TRAIN, "--max-steps", "ten"], "--max-steps"),
    ("train-batch-zero", [*TRAIN, "--batch-size", "0"], "--batch-size 0"),
    ("train-batch-negative", [*TRAIN, "--batch-size", "-4"], "--batch-size -4"),
    ("train-micro-zero", [*TRAIN, "--micro-batch-size", "0"], "--micro-batch-size 0"),
    ("train-arith-zero", [*TRAIN, "--arith", "0"], "--arith 0"),
    ("train-arith-text", [*TRAIN, "--arith", "many"], "--arith"),
    ("train-arith-steps-text", [*TRAIN, "--arith-steps", "two"], "--arith-steps 'two'"),
    ("train-arith-steps-reversed", [*TRAIN, "--arith-steps", "3-2"], "--arith-steps '3-2'"),
    ("train-lr-negative", [*TRAIN, "--lr", "-0.001"], "--lr -0.001"),
    ("train-lr-text", [*TRAIN, "--lr", "fast"], "--lr"),
    ("train-epochs-zero", [*TRAIN, "--epochs", "0"], "--epochs 0"),
    ("train-test-frac-one", [*TRAIN, "--test-frac", "1"], "--test-frac 1.0"),
    ("train-seed-negative", [*TRAIN, "--seed", "-1"], "--seed -1"),
    ("train-checkpoint-every-zero", [*TRAIN, "--checkpoint-every", "0"], "--checkpoint-every 0"),
    ("train-resume-nothing", [*TRAIN, "--resume"], "--resume: there is nothing to resume"),
    ("train-set-no-equals", [*TRAIN, "--set", "lora_r"], "--set 'lora_r'"),
    ("train-set-unknown-field", [*TRAIN, "--set", "rank=8"], "'rank' is not a CODIConfig field"),
    ("train-set-negative-alpha", [*TRAIN, "--set", "lora_alpha=-5"], "lora_alpha=-5"),
    ("train-set-bool-latents", [*TRAIN, "--set", "num_latents=true"], "num_latents=True"),
    ("train-base-empty", ["train", "--base", "", "--out", "run"], "base_model=''"),
    ("train-out-is-file", ["train", "--base", "tiny-llama", "--out", "notes.txt"], "--out 'notes.txt'", _prep_file),
    ("train-data-missing", [*TRAIN, "--data", "gsm8k.jsonl"], "--data 'gsm8k.jsonl'"),
    ("train-codi-config-missing", [*TRAIN, "--codi-config", "codi.json"], "--codi-config 'codi.json'"),
    ("train-codi-config-list", [*TRAIN, "--codi-config", "codi.json"], "--codi-config codi.json", _prep_list_json),
    ("train-config-garbled", [*TRAIN, "--config", "train.json"], "train.json is not valid JSON", _prep_bad_json),
    # probe
    ("probe-cache-missing", ["probe", "--cache", "nope", "--out", "p"], "--cache 'nope'"),
    ("probe-out-existing-file", ["probe", "--cache", "cache", "--out", "notes.txt"], "--out 'notes.txt'",
     lambda t: (_prep_cache_like(t), _prep_file(t))),
    ("probe-out-has-grid", ["probe", "--cache", "cache", "--out", "p"], "--overwrite",
     lambda t: (_prep_cache_like(t), _prep_grid(t))),
    ("probe-folds-one", ["probe", "--cache", "cache", "--out", "p", "--folds", "1"], "--folds 1", _prep_cache_like),
    ("probe-permutations-negative", ["probe", "--cache", "cache", "--out", "p", "--permutations", "-5"],
     "--permutations -5", _prep_cache_like),
    ("probe-test-size-one", ["probe", "--cache", "cache", "--out", "p", "--test-size", "1"], "--test-size 1.0",
     _prep_cache_like),
    ("probe-C-zero", ["probe", "--cache", "cache", "--out", "p", "--C", "1", "0"], "--C 0.0", _prep_cache_like),
    ("probe-layers-text", ["probe", "--cache", "cache", "--out", "p", "--layers", "a,b"], "--layers 'a,b'",
     _prep_cache_like),
    ("probe-method-unknown", ["probe", "--cache", "cache", "--out", "p", "--method", "svm"], "--method"),
    # patch
    ("patch-layers-reversed", ["patch", "--organism", "pointer3", "--out", "o", "--layers", "2-0"],
     "--layers '2-0'"),
    ("patch-hop-zero", ["patch", "--organism", "pointer3", "--out", "o", "--hop", "0"], "--hop 0"),
    ("patch-n-zero", ["patch", "--organism", "pointer3", "--out", "o", "--n", "0"], "--n 0"),
    ("patch-verify-top-negative", ["patch", "--organism", "pointer3", "--out", "o", "--verify-top", "-1"],
     "--verify-top -1"),
    ("patch-max-rows-zero", ["patch", "--organism", "pointer3", "--out", "o", "--max-rows", "0"], "--max-rows 0"),
    ("patch-model-missing", ["patch", "--model", "runs/nope", "--out", "o"], "--model 'runs/nope'"),
    ("patch-organism-unknown", ["patch", "--organism", "pointer9", "--out", "o"], "--organism 'pointer9'"),
    # eval
    ("eval-ckpt-missing", ["eval", "--ckpt", "nope"], "--ckpt 'nope'"),
    ("eval-modes-unknown", ["eval", "--ckpt", "ckpt", "--modes", "codi,fast"], "--modes 'fast'", _prep_ckpt),
    ("eval-limit-zero", ["eval", "--ckpt", "ckpt", "--limit", "0"], "--limit 0", _prep_ckpt),
    ("eval-batch-zero", ["eval", "--ckpt", "ckpt", "--batch-size", "0"], "--batch-size 0", _prep_ckpt),
    ("eval-json-folder", ["eval", "--ckpt", "ckpt", "--json", "ckpt"], "--json 'ckpt'", _prep_ckpt),
    # report
    ("report-probe-missing", ["report", "--probe", "nope"], "--probe 'nope'"),
    ("report-out-folder", ["report", "--probe", "p", "--out", "p"], "--out 'p'", _prep_grid),
    ("report-names-mismatch", ["report", "--probe", "p", "--name", "a", "b"], "--name", _prep_grid),
    # demo and compare
    ("demo-n-odd", ["demo", "--n", "7"], "--n 7"),
    ("demo-layer-stride-zero", ["demo", "--layer-stride", "0"], "--layer-stride 0"),
    ("demo-threads-zero", ["demo", "--threads", "0"], "--threads 0"),
    ("demo-checkpoint-missing", ["demo", "--checkpoint", "nope"], "--checkpoint 'nope'"),
    ("demo-out-is-file", ["demo", "--out", "notes.txt"], "--out 'notes.txt'", _prep_file),
    ("compare-config-missing", ["compare", "--config", "exp.toml"], "--config 'exp.toml'"),
    ("compare-threads-zero", ["compare", "--config", "notes.txt", "--threads", "0"], "--threads 0", _prep_file),
    # the parser itself
    ("unknown-flag", ["models", "--bogus"], "--bogus"),
    ("unknown-command", ["trian"], "trian"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("argv, named, prep",
                         [pytest.param(*(list(x[1:]) + [None] * (4 - len(x))), id=x[0]) for x in CASES])
def test_refused_in_one_line(tmp_path, monkeypatch, capsys, snapshot, argv, named, prep):
    monkeypatch.chdir(tmp_path)
    if prep is not None:
        prep(tmp_path)
    before = snapshot(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse's own errors (bad int, unknown flag)
        rc = exit_.code
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert named in lines[0] and "Traceback" not in err, lines[0]
    assert snapshot(tmp_path) == before
