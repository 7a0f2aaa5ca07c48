"""Bad inputs to interp.cache (plain and CODI paths), interp.load_cache and `codi-lens cache`: each is refused before
any work, with an error that names the argument (or the flag), and leaves the file system as it was (no out=
folder, no meta.json: a refused call never blocks the corrected rerun). Tampered stores: test_store_integrity.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import codi
import interp
from app.cli import main
from argcheck import BadArgument

PROMPTS = ["The capital of France is", "Hi", "a b c"]


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, size and modification time."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder (also the cwd, so default output paths would land here too) holding one user file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a user's file\n")
    return tmp_path


@pytest.fixture(scope="module")
def gpt2():
    return interp.load_model("tiny-gpt2", dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def cm():
    torch.manual_seed(0)
    return codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()


PLAIN = [  # (kwargs, error type, the argument the message names)
    (dict(layers="10"), BadArgument, "layers"),           # was read character by character: layers 1 and 0
    (dict(layers=[]), BadArgument, "layers"),
    (dict(layers=[0, 3]), BadArgument, "layers"),
    (dict(layers=[-1]), BadArgument, "layers"),
    (dict(layers=1.5), BadArgument, "layers"),
    (dict(layers=["1"]), BadArgument, "layers"),
    (dict(layers=True), BadArgument, "layers"),
    (dict(batch_size=0), BadArgument, "batch_size"),
    (dict(batch_size=-1), BadArgument, "batch_size"),     # was: meta.json marked complete with zero shards
    (dict(batch_size=True), BadArgument, "batch_size"),
    (dict(batch_size=2.5), BadArgument, "batch_size"),
    (dict(batch_size="8"), BadArgument, "batch_size"),
    (dict(out=""), BadArgument, "out"),
    (dict(out="notes.txt"), BadArgument, "out"),
    (dict(out="notes.txt/c"), BadArgument, "out"),
    (dict(prompts=None), BadArgument, "prompts"),
    (dict(prompts=[]), BadArgument, "prompts"),
    (dict(prompts=["ok", 3]), BadArgument, "prompts"),
    (dict(prompts=[{"label": 1}]), BadArgument, "prompts"),
    (dict(prompts=5), BadArgument, "prompts"),
    (dict(prompts=pd.DataFrame({"question": ["x"]})), BadArgument, "prompts"),
    (dict(prompts=["a " * 600]), BadArgument, "prompts"),
    (dict(positions=["first"]), BadArgument, "positions"),
    (dict(positions=["prompt[-0]"]), BadArgument, "positions"),
    (dict(positions=[]), BadArgument, "positions"),
    (dict(positions=None), BadArgument, "positions"),
    (dict(positions=2.5), BadArgument, "positions"),
    (dict(positions=["last", "last"]), BadArgument, "positions"),
    (dict(positions=-1), BadArgument, "positions"),
    (dict(positions=[["tok_0"]]), BadArgument, "positions"),
    (dict(dtype="float33"), BadArgument, "dtype"),         # was an AttributeError from torch
    (dict(dtype="int8"), BadArgument, "dtype"),
    (dict(dtype=torch.int32), BadArgument, "dtype"),
    (dict(shard_size=0), BadArgument, "shard_size"),      # was silently the default size
    (dict(shard_size=-5), BadArgument, "shard_size"),
    (dict(shard_size=2.0), BadArgument, "shard_size"),
    (dict(padding_side="middle"), BadArgument, "padding_side"),
    (dict(responses=["x", "y", "z"]), ValueError, "responses"),
]


@pytest.mark.parametrize("kwargs,err,name", PLAIN, ids=[f"{k}={v!r}"[:40] for k, v in (next(iter(c[0].items()))
                                                                                      for c in PLAIN)])
def test_plain_cache_refuses_before_writing(gpt2, place, kwargs, err, name):
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts", PROMPTS)
    kwargs.setdefault("out", "out")
    before = _tree(place)
    with pytest.raises(err) as info:
        interp.cache(gpt2, prompts, progress=False, **kwargs)
    assert name in str(info.value), str(info.value)
    assert _tree(place) == before


CODI = [
    (dict(layers="10"), "layers"),
    (dict(layers=[0, 9]), "layers"),
    (dict(batch_size=0), "batch_size"),
    (dict(positions=["latent_9"]), "positions"),
    (dict(positions=["last"]), "positions"),
    (dict(positions=[]), "positions"),
    (dict(padding_side="middle"), "padding_side"),
    (dict(padding_side="right"), "padding_side"),
    (dict(dtype="float33"), "dtype"),
    (dict(shard_size=0), "shard_size"),
    (dict(out=""), "out"),
    (dict(prompts=None), "prompts"),
    (dict(prompts=[3]), "prompts"),
    (dict(generate=True, max_new_tokens=1), "max_new_tokens"),
]


@pytest.mark.parametrize("kwargs,name", CODI, ids=[f"{k}={v!r}"[:40] for k, v in (next(iter(c[0].items()))
                                                                                for c in CODI)])
def test_codi_cache_refuses_before_writing(cm, place, kwargs, name):
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts", PROMPTS)
    kwargs.setdefault("out", "out")
    before = _tree(place)
    with pytest.raises(ValueError) as info:
        interp.cache(cm, prompts, progress=False, **kwargs)
    assert name in str(info.value), str(info.value)
    assert _tree(place) == before


LOADS = [("", BadArgument, "folder"), (None, BadArgument, "folder"), (7, BadArgument, "folder"),
         ("missing", BadArgument, "folder"), ("notes.txt", BadArgument, "folder"),
         ("empty", FileNotFoundError, "no meta.json")]


@pytest.mark.parametrize("folder,err,named", LOADS, ids=[repr(x[0]) for x in LOADS])
def test_load_cache_refuses(place, folder, err, named):
    (place / "empty").mkdir()
    before = _tree(place)
    with pytest.raises(err, match=named):
        interp.load_cache(folder)
    assert _tree(place) == before


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
    before = _tree(place)
    args = ["cache", "--model", "tiny-llama", "--out", "out", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} " in err, err  # argcheck writes a flag as "--name value"
    assert _tree(place) == before


def test_cache_command_takes_a_long_prompt_as_text(place):
    """A --prompts value that is prompt text, however long, is never tried as a file path ("File name too long")."""
    text = "word " * 60  # 300 characters: longer than a file name may be (255)
    assert main(["cache", "--model", "tiny-llama", "--prompts", text, "notes.txt", "--out", "out"]) == 0
    assert interp.load_cache(place / "out").samples["text"].tolist() == [text, "a user's file"]
