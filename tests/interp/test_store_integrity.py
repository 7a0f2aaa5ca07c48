"""Stores that verify themselves: hand-edited, truncated, bit-flipped, swapped or tampered store files are refused
on load (or on resume) with the file named; stores written before checksums still load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import codi
import interp
from interp.codi_cache import codi_cache, load_codi_cache

TEXTS = [f"Sample {i}: " + " ".join(f"w{(i * 5 + j) % 11}" for j in range(i % 4 + 2)) for i in range(12)]


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


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))


def test_intact_store_records_checksums_and_loads(store, reference):
    meta = json.loads((store / "meta.json").read_text())
    assert sorted(meta["checksums"]) == [f"shard_0000{i}.safetensors" for i in range(3)]
    assert all(len(v) == 64 for v in meta["checksums"].values())
    np.testing.assert_array_equal(interp.load_cache(store).array(), reference[1].array())


@pytest.mark.parametrize("changes, named", [
    (dict(dtype="bfloat16"), "shard_00000.safetensors"),
    (dict(dtype="float33"), "meta.json"),
    (dict(n_shards=2), "meta.json"),
    (dict(n_shards=4), "meta.json"),
    (dict(n_samples=11), "meta.json"),
    (dict(d_model=32), "shard_00000.safetensors"),
    (dict(layers=[0]), "shard_00000.safetensors"),
])
def test_hand_edited_meta_is_refused(store, changes, named):
    _edit_meta(store, **changes)
    with pytest.raises(ValueError, match=named.replace(".", r"\.")) as err:
        interp.load_cache(store)
    assert "fresh out= folder" in str(err.value)


def test_garbled_meta_names_the_file(store):
    (store / "meta.json").write_text('{"format": "codi-lens-activation-cache", ')
    with pytest.raises(ValueError, match=r"meta\.json is not valid JSON"):
        interp.load_cache(store)


def test_truncated_samples_table_is_refused(store):
    lines = (store / "samples.jsonl").read_text().splitlines(keepends=True)
    (store / "samples.jsonl").write_text("".join(lines[:-1]))
    with pytest.raises(ValueError, match=r"samples\.jsonl has 11 rows but .*n_samples=12"):
        interp.load_cache(store)
    (store / "samples.jsonl").write_text("".join(lines[:-1]) + lines[-1][:7])
    with pytest.raises(ValueError, match=r"samples\.jsonl line 12 is not valid JSON"):
        interp.load_cache(store)


def test_bit_flipped_shard_is_refused_on_first_access(store):
    path = store / "shard_00001.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of the last resid value
    path.write_bytes(bytes(data))
    c = interp.load_cache(store)  # opening stays a memory map: the check runs when the shard is first read
    with pytest.raises(ValueError, match=r"shard_00001\.safetensors does not match the checksum"):
        c.array()


def test_swapped_shards_are_refused(store):
    a, b = store / "shard_00000.safetensors", store / "shard_00001.safetensors"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    with pytest.raises(ValueError, match=r"shard_00000\.safetensors does not match the checksum"):
        interp.load_cache(store).sel(layer=1, position="tok_0")


@pytest.mark.parametrize("keep", [5, 100, -3])
def test_truncated_shard_is_refused_on_load(store, keep):
    path = store / "shard_00002.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep > 0 else data[:keep])
    with pytest.raises(ValueError, match=r"shard_00002\.safetensors is truncated"):
        interp.load_cache(store)


def test_extra_stray_shard_is_refused(store):
    shutil.copy(store / "shard_00002.safetensors", store / "shard_00003.safetensors")
    with pytest.raises(ValueError, match="holds 4 shard files"):
        interp.load_cache(store)


def test_resume_verifies_the_shards_already_there(store, llama):
    _edit_meta(store, complete=False, n_shards=None)
    (store / "shard_00002.safetensors").unlink()
    path = store / "shard_00000.safetensors"
    data = bytearray(path.read_bytes())
    data[-9] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"shard_00000\.safetensors does not match the checksum"):
        interp.cache(llama, TEXTS, layers=[0, 1], batch_size=4, shard_size=4, out=store, progress=False)


def test_store_without_checksums_still_loads(store, reference):
    meta = json.loads((store / "meta.json").read_text())
    del meta["checksums"]  # a store written before checksums existed
    (store / "meta.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(interp.load_cache(store).array(), reference[1].array())


def test_tampered_extras_are_refused(tmp_path):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    out = tmp_path / "codi"
    codi_cache(cm, ["1 + 2 = ?", "Sam has 7 coins."], responses=["3", "7"], out=out, progress=False)
    assert "extras_00000.safetensors" in json.loads((out / "meta.json").read_text())["checksums"]
    path = out / "extras_00000.safetensors"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"extras_00000\.safetensors does not match the checksum"):
        load_codi_cache(out)
