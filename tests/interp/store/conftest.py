"""Fixtures of the store tests (inputs in store_fixtures.py): a tiny model, a finished 3-shard reference store and a
fresh copy of it per test, to damage."""

from __future__ import annotations

import shutil

import pytest
from store_fixtures import TEXTS

import interp


@pytest.fixture(scope="module")
def llama():
    return interp.load_model("tiny-llama", dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def reference(llama, tmp_path_factory):
    """A finished 3-shard store (12 samples, shards of 4) and its in-memory twin."""
    out = tmp_path_factory.mktemp("ref") / "c"
    interp.cache(llama, TEXTS, layers=[0, 1], batch_size=4, shard_size=4, out=out, progress=False)
    return out, interp.cache(llama, TEXTS, layers=[0, 1], batch_size=4, progress=False)


@pytest.fixture
def store(reference, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(reference[0], out)
    return out
