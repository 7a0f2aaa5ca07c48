"""The `codi-lens` command line (app/cli.py): the subcommands it routes to, argparse's own errors as one line, an
error raised inside a command as one line naming the flag (also for nested verbs like `organism train`), and
`--debug` before or after the subcommand for the traceback. (Every flag's refusal: test_cli_bad_inputs.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.cli import main
from argcheck import BadArgument

COMMANDS = ["models", "cache", "train", "report", "probe", "patch", "eval", "demo", "organism", "transfer",
            "compare"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: codi-lens [-h] [--debug]")
    assert "{" + ",".join(COMMANDS) + "}" in out


def test_python_dash_m_app_is_the_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    res = subprocess.run([sys.executable, "-m", "app", "demo", "--n", "7"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == ("codi-lens demo: error: --n 7: must be even (one honest and one lying sample per question). "
                          "Fix: pass --n 8. (--debug shows the traceback)\n")
    assert not list(tmp_path.iterdir())


def test_an_argparse_error_is_one_line_with_the_help_hint(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--max-steps", "ten", "--out", "run"])
    assert info.value.code == 2
    assert capsys.readouterr().err == ("codi-lens train: error: argument --max-steps: invalid int value: 'ten' "
                                       "(see codi-lens train --help)\n")


def test_a_nested_verb_names_its_flag_or_shows_the_traceback(tmp_path, capsys):
    argv = ["organism", "train", "--family", "maze", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err == ("codi-lens organism: error: --family 'maze': must be one of 'modular', "
                                       "'pointer'. (--debug shows the traceback)\n")
    with pytest.raises(BadArgument, match="^family='maze': must be one of 'modular', 'pointer'"):
        main([*argv, "--debug"])                                  # the library's own words, with the traceback
    assert not (tmp_path / "o").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["--debug", "probe", "--cache", "nope", "--out", "p"], ["probe", "--cache", "nope", "--out", "p",
                                                                         "--debug"]):
        with pytest.raises(ValueError, match="--cache 'nope'"):
            main(argv)
    assert not list(tmp_path.iterdir())
