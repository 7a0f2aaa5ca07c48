"""interp.store.reader: a store reads back exactly, memory-mapped, shard by shard in order; hand-edited, truncated,
bit-flipped, swapped or tampered store files are refused on load (or on first access) with the file named; stores
written before checksums still load; bf16 bits are widened exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import MANY, PROMPTS
from store_fixtures import edit_meta

import codi
import interp
from interp.codi_cache import codi_cache, load_codi_cache
from interp.store.reader import to_float32


def test_bf16_bits_widen_exactly_as_torch_does():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    bits = x.view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(to_float32(bits, "bfloat16"), x.float().numpy())
    np.testing.assert_array_equal(to_float32(x, "bfloat16"), x.float().numpy())


def test_round_trip_is_exact_and_memory_mapped(llama, tmp_path):
    rows = [{"text": p, "label": i % 2, "group": i // 2} for i, p in enumerate(PROMPTS)]
    mem = interp.cache(llama, rows, progress=False)
    disk = interp.cache(llama, rows, out=tmp_path / "c", progress=False)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "meta.json",
        "samples.jsonl",
        "shard_00000.safetensors",
    ]
    back = interp.load_cache(tmp_path / "c")
    for c in (disk, back):
        assert isinstance(c.array(), np.memmap) and c.array().dtype == np.float32
        np.testing.assert_array_equal(c.array(), mem.array())
        np.testing.assert_array_equal(c.valid, mem.valid)
        np.testing.assert_array_equal(c.sel(layer=2, position="last"), mem.sel(layer=2, position="last"))
        assert c.samples.to_dict("records") == mem.samples.to_dict("records")
        assert c.layers == [0, 1, 2] and c.positions == mem.positions
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert (
        meta["model"] == "tiny-llama" and meta["complete"] and meta["n_shards"] == 1 and meta["d_model"] == 64
    )
    mtime = (tmp_path / "c" / "shard_00000.safetensors").stat().st_mtime_ns
    again = interp.cache(
        llama, rows, out=tmp_path / "c", progress=False
    )  # finished cache: reopened, not redone
    assert (tmp_path / "c" / "shard_00000.safetensors").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.array(), mem.array())


def test_many_shards_read_back_in_order(llama, tmp_path):
    mem = interp.cache(llama, MANY[:11], positions=["tok_0", "last"], batch_size=2, progress=False)
    disk = interp.cache(
        llama,
        MANY[:11],
        positions=["tok_0", "last"],
        batch_size=2,
        shard_size=4,
        out=tmp_path / "s",
        progress=False,
    )
    assert disk.meta["n_shards"] == 3 and [p.n for p in disk.parts] == [4, 4, 3]
    np.testing.assert_array_equal(disk.array(), mem.array())
    np.testing.assert_array_equal(
        disk.array(layers=[2, 0], positions=["last"]), mem.array()[:, [2, 0]][:, :, [1]]
    )
    np.testing.assert_array_equal(disk.sel(layer=1, position="last"), mem.sel(layer=1, position="last"))
    blocks = list(disk.iter_parts())
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), mem.array())


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
    edit_meta(store, **changes)
    with pytest.raises(ValueError, match=named.replace(".", r"\.")) as err:
        interp.load_cache(store)
    assert "fresh out= folder" in str(err.value)


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
