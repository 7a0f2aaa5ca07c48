"""Command-line flags, checked before a command does any work: parsers of flag text that name the flag, the
per-command checks, and the one-line error the CLI prints.

    >>> parse_ints("--layers", "0,5,10-12")
    [0, 5, 10, 11, 12]
    >>> parse_ints("--layers", "2-0")
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --layers '2-0': must be integers or ranges LO-HI with LO <= HI...
    >>> one_line(ValueError("a\\n  b"), {})
    'a; b'
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from argcheck import (
    BadArgument,
    check_choice,
    check_float,
    check_int,
    check_new_path,
    check_out_folder,
    check_path_exists,
)

__all__ = ["parse_ints", "parse_steps", "parse_set", "check_counts", "one_line", "flag_names", "check_train",
           "check_probe", "check_patch", "check_eval", "check_report", "check_demo", "check_compare"]

_RANGE = re.compile(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?")


def parse_ints(flag: str, text: str, *, words: tuple[str, ...] = ()) -> list[int | str]:
    """Comma-separated integers and LO-HI ranges (plus the given `words`, kept as strings), e.g. '0,5,10-12'.

    >>> parse_ints("--layers", "input,0,2-4", words=("input", "all"))
    ['input', 0, 2, 3, 4]
    """
    out: list[int | str] = []
    for part in str(text).split(","):
        if part.strip() in words:
            out.append(part.strip())
            continue
        m = _RANGE.fullmatch(part)
        lo = int(m.group(1)) if m else -1
        hi = int(m.group(2)) if m and m.group(2) is not None else lo
        if not m or lo < 0 or hi < lo:
            raise BadArgument(flag, text, "must be integers or ranges LO-HI with LO <= HI, comma-separated, each >= 0"
                              + (f" (or {', '.join(words)})" if words else ""), f"e.g. {flag} 0,5,10-12")
        out += list(range(lo, hi + 1))
    return out


def parse_steps(flag: str, text: str) -> tuple[int, int]:
    """'N' or 'LO-HI' steps per generated problem, 1 <= LO <= HI.

    >>> parse_steps("--arith-steps", "2-3"), parse_steps("--arith-steps", "3")
    ((2, 3), (3, 3))
    """
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    lo = int(m.group(1)) if m else 0
    hi = int(m.group(2)) if m and m.group(2) else lo
    if not m or not 1 <= lo <= hi:
        raise BadArgument(flag, text, "must be N or LO-HI with 1 <= LO <= HI", f"e.g. {flag} 2-3")
    return lo, hi


def parse_set(items: list[str], known: list[str]) -> dict[str, Any]:
    """--set FIELD=VALUE items: VALUE is JSON when it parses (numbers, true/false/null, lists), else a string.

    >>> parse_set(["lora_r=8", "base_model=tiny-llama", "prj_layer_norm=true"],
    ...           ["lora_r", "base_model", "prj_layer_norm"])
    {'lora_r': 8, 'base_model': 'tiny-llama', 'prj_layer_norm': True}
    >>> parse_set(["rank=8"], ["lora_r"])
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --set 'rank=8': 'rank' is not a CODIConfig field. Fix: use one of ['lora_r'].
    """
    out: dict[str, Any] = {}
    for item in items:
        key, eq, val = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BadArgument("--set", item, "must be FIELD=VALUE", "e.g. --set lora_r=8")
        if key not in known:
            raise BadArgument("--set", item, f"{key!r} is not a CODIConfig field", f"use one of {sorted(known)}")
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def check_counts(args: argparse.Namespace, minimum: dict[str, int]) -> None:
    """Integer flags (already ints via argparse) against their minimum, named as flags; unset (None) ones pass.

    >>> check_counts(argparse.Namespace(max_steps=0, seed=None), {"max_steps": 1, "seed": 0})
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --max-steps 0: must be an integer >= 1. Fix: pass --max-steps 1 or more.
    """
    for attr, low in minimum.items():
        if getattr(args, attr, None) is not None:
            check_int(flag_of(attr), getattr(args, attr), min=low, fix=f"pass {flag_of(attr)} {low} or more")


def flag_of(attr: str) -> str:
    return "--" + attr.replace("_", "-")


def _existing(flag: str, value: str | None, kind: str) -> None:
    if value is not None:
        check_path_exists(flag, value, kind=kind)


def check_train(args: argparse.Namespace) -> None:
    check_counts(args, {"arith": 1, "max_steps": 1, "batch_size": 1, "micro_batch_size": 1, "checkpoint_every": 1,
                        "seed": 0, "data_seed": 0})
    for flag, value in (("--lr", args.lr), ("--epochs", args.epochs)):
        if value is not None:
            check_float(flag, value, min=0, min_open=True)
    check_float("--test-frac", args.test_frac, min=0, max=1, max_open=True, fix="use e.g. --test-frac 0.1")
    parse_steps("--arith-steps", args.arith_steps)
    for flag, value in (("--codi-config", args.codi_config), ("--config", args.config), ("--data", args.data)):
        _existing(flag, value, "file")
    check_out_folder("--out", args.out)


def check_probe(args: argparse.Namespace) -> None:
    _existing("--cache", args.cache, "folder")
    out = check_out_folder("--out", args.out, fix="pass a folder for grid.json, table.csv and scores.safetensors")
    if (out / "grid.json").exists() and not args.overwrite:
        raise BadArgument("--out", args.out, "already holds grid.json", "pass --overwrite or another --out")
    check_counts(args, {"folds": 2, "permutations": 0, "seed": 0})
    if args.test_size is not None:
        check_float("--test-size", args.test_size, min=0, max=1, min_open=True, max_open=True)
    for c in args.C or []:
        check_float("--C", c, min=0, min_open=True, fix="pass positive values, e.g. --C 0.1 1 10")
    if args.layers:
        parse_ints("--layers", args.layers)


def check_patch(args: argparse.Namespace) -> None:
    check_counts(args, {"hop": 1, "n": 1, "verify_top": 0, "verify_sample": 0, "arith": 1, "data_seed": 0,
                        "max_rows": 1, "top": 1})
    parse_ints("--layers", args.layers, words=("input", "all"))
    parse_steps("--arith-steps", args.arith_steps)
    _existing("--model", args.model, "folder")
    _existing("--data", args.data, "file")
    check_out_folder("--out", args.out)


def check_eval(args: argparse.Namespace) -> None:
    _existing("--ckpt", args.ckpt, "folder")
    _existing("--data", args.data, "file")
    check_counts(args, {"arith": 1, "data_seed": 0, "limit": 1, "batch_size": 1, "max_new_tokens": 1})
    parse_steps("--arith-steps", args.arith_steps)
    for mode in args.modes.split(","):
        check_choice("--modes", mode.strip(), ["codi", "no_cot", "cot"], fix="e.g. --modes codi,no_cot,cot")
    if args.json:
        check_new_path("--json", args.json)


def check_report(args: argparse.Namespace) -> None:
    for folder in args.probe:
        _existing("--probe", folder, "folder")
    check_new_path("--out", args.out, fix="pass --out report.html")
    if args.png:
        check_new_path("--png", args.png)
    if args.lens:
        _existing("--lens", args.lens, "file")
    if args.name and len(args.name) != len(args.probe):
        raise BadArgument("--name", args.name, f"must give one name per --probe folder ({len(args.probe)})",
                          "pass as many --name values as --probe folders")


def check_demo(args: argparse.Namespace) -> None:
    """`codi-lens demo` flags: sizes, an even --n, --checkpoint present, --out and --png writable.

    >>> args = argparse.Namespace(train_steps=None, n=7, layer_stride=None, permutations=None, threads=None,
    ...                           checkpoint=None, out="runs/demo", png=None)
    >>> check_demo(args)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --n 7: must be even (one honest and one lying sample per question). Fix: pass --n 8.
    """
    check_counts(args, {"train_steps": 0, "n": 4, "layer_stride": 1, "permutations": 0, "threads": 1})
    if args.n is not None and args.n % 2:
        raise BadArgument("--n", args.n, "must be even (one honest and one lying sample per question)",
                          f"pass --n {args.n + 1}")
    _existing("--checkpoint", args.checkpoint, "folder")
    check_out_folder("--out", args.out)
    if args.png:
        check_new_path("--png", args.png)


def check_compare(args: argparse.Namespace) -> None:
    _existing("--config", args.config, "file")
    check_counts(args, {"threads": 1})
    if args.out:
        check_out_folder("--out", args.out)
    for flag, value in (("--report", args.report), ("--png", args.png)):
        if value:
            check_new_path(flag, value)


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """{dest: "--flag"} of a (sub)parser's options, so an error about `max_steps` can name `--max-steps`.

    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("-n", "--max-steps", type=int)
    >>> flag_names(p)
    {'help': '--help', 'max_steps': '--max-steps'}
    """
    return {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings}


def one_line(err: BaseException, flags: dict[str, str]) -> str:
    """The error as one line: an argument named by its API name is renamed to its flag where the command has one;
    a multi-line message is joined with '; '; types other than ValueError/TypeError are named.

    >>> err = BadArgument("max_steps", 0, "must be an integer >= 1", "pass max_steps=1")    # raised by a library call
    >>> one_line(err, {"max_steps": "--max-steps"})
    '--max-steps 0: must be an integer >= 1. Fix: pass --max-steps 1.'
    >>> one_line(RuntimeError("CUDA out of memory"), {})
    'RuntimeError: CUDA out of memory'
    """
    if isinstance(err, BadArgument) and err.name in flags:
        flag, name = flags[err.name], re.escape(err.name)
        fix = re.sub(rf"\b{name}=(True|False)\b", flag, err.fix)        # resume=True -> --resume
        fix = re.sub(rf"\b{name}=", f"{flag} ", fix)                     # max_steps=1 -> --max-steps 1
        text = str(BadArgument(flag, err.value, err.allowed, fix))
    elif isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    if not isinstance(err, (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError)):
        text = f"{type(err).__name__}: {text}"
    return text
