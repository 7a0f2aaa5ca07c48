"""`codi-lens cache` (app/cache_command.py) refuses bad flags before any work, naming the flag, and leaves the file
system as it was (no --out folder, no meta.json); a long --prompts value is prompt text (moved from
tests/interp/test_cache_bad_inputs.py, which was split by module); a CODI checkpoint folder is cached on a task."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import codi
import interp
from app.cli import main
from interp.codi_cache import load_codi_cache


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


@pytest.mark.bad_input
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


def test_cli_caches_a_codi_folder_on_a_task(tmp_path, capsys):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=2))
    folder = cm.save_pretrained(tmp_path / "ckpt")
    args = ["cache", "--model", str(folder), "--task", "deception-arith", "--n", "4", "--out", str(tmp_path / "c")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--positions", "latents,eot,resp_0", "--layers", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "latent views: latent_pre_prj (4, 2, 64), latent_post_prj (4, 2, 64)" in out and "identity check" in out
    c = load_codi_cache(tmp_path / "c")
    assert c.positions == ["latent_0", "latent_1", "eot", "resp_0"] and c.layers == [1, 2]
    assert c.samples["label"].tolist() == [0, 1, 0, 1] and c.extras["latent_pre_prj"].shape == (4, 2, 64)
    bad = ["cache", "--model", str(folder), "--task", "deception-arith", "--n", "4", "--positions", "latent_2"]
    assert main([*bad, "--out", str(tmp_path / "never")]) == 2
    assert "'latent_2' does not exist" in capsys.readouterr().err and not (tmp_path / "never").exists()
