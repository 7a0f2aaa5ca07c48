"""`codi-lens cache` refuses bad flags before any work, naming the flag, and leaves the file system as it was (no
--out folder, no meta.json); a long --prompts value is prompt text (app/cache_command.py). Moved from
tests/interp/test_cache_bad_inputs.py, which was split by module."""

from __future__ import annotations

from pathlib import Path

import pytest

import interp
from app.cli import main


def stat_tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, size and modification time (as tests/interp/helpers.py's)."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder (also the cwd, so default output paths would land here too) holding one user file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a user's file\n")
    return tmp_path


CLI = [  # extra arguments of `codi-lens cache --model tiny-llama --out out`, and the flag the error names
    (["--prompts", "missing.jsonl"], "--prompts"),     # was: the text "missing.jsonl" cached, exit 0
    (["--prompts", "missing.json"], "--prompts"),
    (["--prompts", "sub/missing.txt"], "--prompts"),
    (["--prompts", "ok", "other.TXT"], "--prompts"),
    (["--layers", "2-0"], "--layers"),                 # was: no layers at all
    (["--layers", "abc"], "--layers"),
    (["--layers", "1-x"], "--layers"),
    (["--layers", "0,9"], "--layers"),
    (["--batch-size", "-4"], "--batch-size"),          # was: meta.json marked complete with zero shards
    (["--batch-size", "0"], "--batch-size"),
    (["--shard-size", "0"], "--shard-size"),
    (["--positions", "first"], "--positions"),
    (["--positions", "prompt[-0]"], "--positions"),
    (["--out", "notes.txt"], "--out"),
    (["--task", "deception-arith", "--n", "0"], "--n"),
    (["--generate", "--max-new-tokens", "1", "--task", "deception-arith"], "--max-new-tokens"),
]


@pytest.mark.parametrize("extra,flag", CLI, ids=[" ".join(c[0])[:40] for c in CLI])
def test_cache_command_refuses_before_writing(place, capsys, extra, flag):
    before = stat_tree(place)
    args = ["cache", "--model", "tiny-llama", "--out", "out", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} " in err, err  # argcheck writes a flag as "--name value"
    assert stat_tree(place) == before


def test_cache_command_takes_a_long_prompt_as_text(place):
    """A --prompts value that is prompt text, however long, is never tried as a file path ("File name too long")."""
    text = "word " * 60  # 300 characters: longer than a file name may be (255)
    assert main(["cache", "--model", "tiny-llama", "--prompts", text, "notes.txt", "--out", "out"]) == 0
    assert interp.load_cache(place / "out").samples["text"].tolist() == [text, "a user's file"]
