"""interp.cache_args: the store dtype rule, prompt lists, layers and position labels of both paths, each refusal an
argcheck.BadArgument naming the argument (the same checks through interp.cache: test_cache.py, test_codi_cache.py)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from argcheck import BadArgument
from interp.cache_args import check_layers, check_prompts, check_run_args, codi_labels, plain_labels, store_dtype


def test_store_dtype_follows_the_model_unless_given():
    assert [store_dtype(None, d) for d in (torch.float32, torch.bfloat16, torch.float16, torch.float64)] == [
        torch.float32, torch.bfloat16, torch.float16, torch.float32]
    assert store_dtype("float16", torch.bfloat16) == torch.float16
    assert store_dtype(torch.bfloat16, torch.float32) == torch.bfloat16
    for bad in ("float64", "int8", torch.int32, "torch.float32"):
        with pytest.raises(BadArgument, match="dtype="):
            store_dtype(bad, torch.float32)


def test_prompt_lists():
    assert check_prompts("one") == ["one"]
    assert check_prompts(x for x in ["a", "b"]) == ["a", "b"]  # a generator is read once
    frame = pd.DataFrame({"text": ["a"]})
    assert check_prompts(frame) is frame
    for bad in (None, [], pd.DataFrame({"text": []}), 3, b"x", {"text": "a"}):
        with pytest.raises(BadArgument, match="prompts="):
            check_prompts(bad)


def test_layers():
    assert check_layers("all", 3) == [0, 1, 2, 3] and check_layers(2, 3) == [2] and check_layers((3, 1), 3) == [1, 3]
    with pytest.raises(BadArgument, match=r"layers=\[0, 4\]: this model has 3 layers, so valid layers are 0..3"):
        check_layers([0, 4], 3)
    for bad in ("2", [], True, [1.0], None):
        with pytest.raises(BadArgument, match="layers="):
            check_layers(bad, 3)


def test_position_labels_of_both_paths():
    assert plain_labels(["tok_1", "last"], None) == ["tok_1", "last"] and plain_labels("all", None) is None
    assert plain_labels("all", [2, 4]) == ["tok_0", "tok_1", "tok_2", "tok_3"] and plain_labels(0, [3]) == ["tok_0"]
    assert codi_labels("latents", n_q=4, num_latents=3, n_resp=0) == ["latent_0", "latent_1", "latent_2"]
    assert codi_labels(["q[-1]", "eot", "resp_1"], 4, 3, 2) == ["q[-1]", "eot", "resp_1"]
    for bad in (["latent_0"], ["prompt[-0]"], [], None, 2.5, ["last", "last"]):
        with pytest.raises(BadArgument, match="positions="):
            plain_labels(bad, [3])
    for bad in (["latent_3"], ["last"], [], ["resp_2"], 7):
        with pytest.raises(BadArgument, match="positions="):
            codi_labels(bad, 4, 3, 2)


def test_run_args(tmp_path):
    check_run_args(batch_size=1, out=tmp_path / "new", dtype=None, shard_size=None)
    assert not (tmp_path / "new").exists()  # checked, not created
    (tmp_path / "file").write_text("x")
    for kwargs, name in ((dict(batch_size=0), "batch_size"), (dict(out=tmp_path / "file"), "out"),
                         (dict(dtype="float8"), "dtype"), (dict(shard_size=-1), "shard_size")):
        args = {**dict(batch_size=4, out=None, dtype=None, shard_size=None), **kwargs}
        with pytest.raises(BadArgument, match=f"{name}="):
            check_run_args(**args)
