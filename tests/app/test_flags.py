"""Command-line flag parsers and checks (app/flags.py): what each parser returns, what it refuses (a BadArgument
naming the flag and the value), the per-command checks on valid and bad Namespaces (nothing written either way), and
the one-line error the CLI prints."""

from __future__ import annotations

import argparse
import re

import pytest

from app.flags import (
    check_compare,
    check_counts,
    check_demo,
    check_eval,
    check_patch,
    check_probe,
    check_report,
    check_train,
    flag_names,
    one_line,
    parse_ints,
    parse_set,
    parse_steps,
)
from argcheck import BadArgument


def test_parse_ints_reads_lists_ranges_and_words():
    assert parse_ints("--layers", "0,5,10-12") == [0, 5, 10, 11, 12]
    assert parse_ints("--layers", " 3 - 5 , 1") == [3, 4, 5, 1]                 # order kept, spaces allowed
    assert parse_ints("--layers", "input,0,2-3", words=("input", "all")) == ["input", 0, 2, 3]
    assert parse_ints("--layers", "7") == [7]


@pytest.mark.parametrize("text", ["2-0", "-1", "a,b", "1,,2", "", "1-x", "input"])
def test_parse_ints_refuses(refused, text):
    msg = refused(lambda: parse_ints("--layers", text), BadArgument, f"--layers {text!r}", "e.g. --layers 0,5,10-12")
    assert "LO <= HI" in msg


def test_parse_ints_names_its_words_when_refusing(refused):
    refused(lambda: parse_ints("--layers", "inputs", words=("input", "all")), BadArgument, "(or input, all)")


def test_parse_steps():
    assert parse_steps("--arith-steps", "3") == (3, 3)
    assert parse_steps("--arith-steps", " 2 - 4 ") == (2, 4)
    for text in ("0", "3-2", "x", "2-", "1-2-3"):
        with pytest.raises(BadArgument, match=rf"--arith-steps {text!r}: must be N or LO-HI with 1 <= LO <= HI"):
            parse_steps("--arith-steps", text)


def test_parse_set_types_values_as_json_else_text():
    known = ["lora_r", "lr", "name", "flag", "xs", "n", "eq"]
    got = parse_set(["lora_r=8", "lr=1e-4", "name=abc", "flag=true", "xs=[1, 2]", "n=null", "eq=a=b", " name = x"],
                    known)
    assert got == {"lora_r": 8, "lr": 1e-4, "name": " x", "flag": True, "xs": [1, 2], "n": None, "eq": "a=b"}
    assert parse_set([], known) == {}
    with pytest.raises(BadArgument, match="--set 'lora_r': must be FIELD=VALUE"):
        parse_set(["lora_r"], known)
    with pytest.raises(BadArgument, match="--set '=3': must be FIELD=VALUE"):
        parse_set(["=3"], known)
    with pytest.raises(BadArgument, match=r"--set 'rank=8': 'rank' is not a CODIConfig field. Fix: use one of \['eq'"):
        parse_set(["rank=8"], known)


def test_check_counts_names_the_flag_and_skips_unset_values():
    args = argparse.Namespace(max_steps=0, seed=None, batch_size=4)
    with pytest.raises(BadArgument, match="--max-steps 0: .*Fix: pass --max-steps 1 or more"):
        check_counts(args, {"max_steps": 1, "seed": 0, "batch_size": 1})
    check_counts(args, {"seed": 0, "batch_size": 4, "absent": 3})            # None / missing: not checked


def test_flag_names_maps_each_option_to_its_long_flag():
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("-n", "--max-steps", type=int)
    p.add_argument("--C", dest="C")
    p.add_argument("--no-progress", action="store_true")
    assert flag_names(p) == {"help": "--help", "max_steps": "--max-steps", "C": "--C", "no_progress": "--no-progress"}


def test_one_line_renames_api_arguments_to_flags():
    flags = {"max_steps": "--max-steps", "resume": "--resume"}
    err = BadArgument("max_steps", -1, "must be an integer >= 1", "pass max_steps=1 or more")
    assert one_line(err, flags) == "--max-steps -1: must be an integer >= 1. Fix: pass --max-steps 1 or more."
    err = BadArgument("resume", True, "there is nothing to resume", "drop resume=True")
    assert one_line(err, flags) == "--resume: there is nothing to resume. Fix: drop --resume."
    err = BadArgument("lora_alpha", -5, "must be > 0", "pass lora_alpha=16")            # no such flag: kept
    assert one_line(err, flags) == "lora_alpha=-5: must be > 0. Fix: pass lora_alpha=16."


def test_one_line_joins_lines_and_names_unexpected_error_types():
    assert one_line(ValueError("first\n   second\n\n third  "), {}) == "first; second; third"
    assert one_line(KeyError("no column 'label'"), {}) == "no column 'label'"
    assert one_line(FileNotFoundError("gone.json"), {}) == "gone.json"
    assert one_line(RuntimeError("CUDA out of memory"), {}) == "RuntimeError: CUDA out of memory"
    assert one_line(ValueError(), {}) == "ValueError"


def _train(**over) -> argparse.Namespace:
    d = dict(arith=None, max_steps=None, batch_size=None, micro_batch_size=None, checkpoint_every=None, seed=None,
             data_seed=0, lr=None, epochs=None, test_frac=0.0, arith_steps="2-3", codi_config=None, config=None,
             data=None, out="run")
    return argparse.Namespace(**{**d, **over})


def test_check_train(tmp_path, monkeypatch, snapshot):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.json").write_text("{}")
    before = snapshot(tmp_path)
    check_train(_train(max_steps=5, lr=1e-3, epochs=0.5, test_frac=0.2, config="cfg.json", arith=10))
    assert snapshot(tmp_path) == before                                    # checks write nothing, --out included
    for over, named in (({"lr": 0.0}, "--lr 0.0"), ({"epochs": -1.0}, "--epochs -1.0"),
                        ({"test_frac": 1.0}, "--test-frac 1.0"), ({"arith_steps": "3-1"}, "--arith-steps '3-1'"),
                        ({"data": "missing.jsonl"}, "--data 'missing.jsonl'"),
                        ({"out": "cfg.json"}, "--out 'cfg.json'"), ({"micro_batch_size": 0}, "--micro-batch-size 0"),
                        ({"data_seed": -1}, "--data-seed -1")):
        with pytest.raises(BadArgument, match=f"^{re.escape(named)}"):
            check_train(_train(**over))
    assert snapshot(tmp_path) == before


def test_check_probe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").mkdir()
    args = dict(cache="cache", out="p", overwrite=False, folds=5, permutations=0, seed=0, test_size=None, C=[0.1, 1.0],
                layers="0,2-3")
    check_probe(argparse.Namespace(**args))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "grid.json").write_text("{}")
    with pytest.raises(BadArgument, match="--out 'p': already holds grid.json. Fix: pass --overwrite"):
        check_probe(argparse.Namespace(**args))
    check_probe(argparse.Namespace(**{**args, "overwrite": True}))
    for over, named in (({"test_size": 0.0}, "--test-size 0.0"), ({"C": [1.0, -2.0]}, "--C -2.0"),
                        ({"layers": "x"}, "--layers 'x'"), ({"folds": 1}, "--folds 1"),
                        ({"cache": "nope"}, "--cache 'nope'")):
        with pytest.raises(BadArgument, match=f"^{re.escape(named)}"):
            check_probe(argparse.Namespace(**{**args, "overwrite": True, **over}))


def test_check_patch_eval_report_demo_compare(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "p").mkdir()
    (tmp_path / "exp.toml").write_text("")
    patch = dict(hop=1, n=8, verify_top=0, verify_sample=0, arith=None, data_seed=0, max_rows=16, top=3,
                 layers="input,0-2", arith_steps="3", model="run", data=None, out="o")
    check_patch(argparse.Namespace(**patch))
    with pytest.raises(BadArgument, match="^--layers 'inputs,0'"):
        check_patch(argparse.Namespace(**{**patch, "layers": "inputs,0"}))
    ev = dict(ckpt="run", data=None, arith=None, data_seed=0, limit=None, batch_size=4, max_new_tokens=8,
              arith_steps="2", modes="codi, cot", json="res.json")
    check_eval(argparse.Namespace(**ev))
    with pytest.raises(BadArgument, match="^--json 'p'"):
        check_eval(argparse.Namespace(**{**ev, "json": "p"}))
    rep = dict(probe=["p"], out="r.html", png=None, lens=None, name=["a"])
    check_report(argparse.Namespace(**rep))
    with pytest.raises(BadArgument, match=r"^--name \['a', 'b'\]: must give one name per --probe folder \(1\)"):
        check_report(argparse.Namespace(**{**rep, "name": ["a", "b"]}))
    demo = dict(train_steps=0, n=8, layer_stride=1, permutations=0, threads=1, checkpoint=None, out="runs/demo",
                png=None)
    check_demo(argparse.Namespace(**demo))
    with pytest.raises(BadArgument, match="^--n 9: must be even .* Fix: pass --n 10"):
        check_demo(argparse.Namespace(**{**demo, "n": 9}))
    cmp = dict(config="exp.toml", threads=None, out=None, report=None, png=None)
    check_compare(argparse.Namespace(**cmp))
    with pytest.raises(BadArgument, match="^--report 'p'"):
        check_compare(argparse.Namespace(**{**cmp, "report": "p"}))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["exp.toml", "p", "run"]
