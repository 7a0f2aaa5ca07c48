"""On-disk activation store: a folder with `meta.json`, `samples.jsonl` and safetensors shards.

    cache_dir/
      meta.json               model, n_layers, d_model, config_hash, dtype, layers, positions, shard_size, complete
      samples.jsonl           one JSON object per sample (id, text, label, group, extra columns), in row order
      shard_00000.safetensors "resid": [n, layer, position, d] (float32, bfloat16 or float16 as stored)
                              "valid": [n, position] bool; shard i holds rows [i*shard_size, (i+1)*shard_size)

Every file is written under a temporary name and renamed into place, so a killed writer leaves only whole files;
`open_writer` on the same folder with the same settings resumes at the first missing shard. Shards are read back
by memory map (`np.memmap` at the tensor's offset in the safetensors file), so opening a cache costs no copies.

    >>> w = open_writer("runs/c", meta, samples, shard_size=256)   # raises if runs/c holds another model's cache
    >>> w.start_row                                               # rows already on disk (resume point)
    0
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Float
from safetensors.torch import load_file, save_file
from torch import Tensor

__all__ = ["FORMAT", "Part", "StoreWriter", "open_writer", "read_meta", "read_samples", "open_parts",
           "check_folder", "samples_hash", "EXTRA_KEYS", "load_extras", "shard_rows",
           "SHARD_BYTES"]

FORMAT = "codi-lens-activation-cache"
SHARD_BYTES = 256 << 20  # default shard size
VERSION = 1
IDENTITY_KEYS = ("model", "config_hash")  # a folder holding other values holds another model's cache
SETTING_KEYS = ("layers", "positions", "samples_hash", "dtype", "shard_size", "codi")
_NP = {"F32": np.float32, "BF16": np.uint16, "F16": np.float16, "BOOL": np.bool_}


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.safetensors"


def shard_rows(shard_size: int | None, row_bytes: int, batch_size: int) -> int:
    """Rows per shard: `shard_size` when given, else about SHARD_BYTES per shard in whole batches.

    >>> shard_rows(None, 1 << 20, 16), shard_rows(3, 1 << 20, 16)
    (256, 3)
    """
    return int(shard_size or max(batch_size, SHARD_BYTES // max(row_bytes, 1) // batch_size * batch_size))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def samples_jsonl(samples: pd.DataFrame) -> bytes:
    rows = samples.to_dict(orient="records")
    return "".join(json.dumps({k: _json_value(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                   for r in rows).encode()


def samples_hash(samples: pd.DataFrame) -> str:
    return hashlib.sha256(samples_jsonl(samples)).hexdigest()[:16]


def read_meta(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "meta.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no activation cache (no meta.json). Write one with "
                                f"interp.cache(model, prompts, out={str(folder)!r}).")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a codi-lens activation cache (format={meta.get('format')!r}).")
    return meta


def read_samples(folder: str | os.PathLike) -> pd.DataFrame:
    lines = (Path(folder) / "samples.jsonl").read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def check_folder(folder: str | os.PathLike, meta: dict) -> dict | None:
    """Validate `out=` before anything is written. Returns the existing meta (same model and settings: resume or
    reuse) or None (new/empty folder). Raises if the folder holds another model's cache or other settings."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out={str(folder)!r} is a file, not a folder; pass a folder path.")
    if not (folder / "meta.json").exists():
        if folder.exists() and any(p.name.startswith("shard_") for p in folder.iterdir()):
            raise ValueError(f"{folder} holds shards but no meta.json; delete it or pass another folder.")
        return None
    old = read_meta(folder)
    for key in IDENTITY_KEYS:
        if old.get(key) != meta.get(key):
            raise ValueError(
                f"{folder} already holds a cache of another model ({key}: {old.get(key)!r} there, "
                f"{meta.get(key)!r} now). Pass a new out= folder, or delete {folder} to replace it.")
    for key in SETTING_KEYS:
        if old.get(key) != meta.get(key):
            raise ValueError(
                f"{folder} holds a cache of this model with other settings ({key} differs). Pass a new out= "
                f"folder, or delete {folder} to replace it.")
    return old


@dataclass
class StoreWriter:
    """Buffers rows in memory up to one shard and writes each full shard atomically. Peak memory: one shard."""

    folder: Path
    meta: dict
    shard_size: int
    start_row: int
    _buf: Tensor | None = None
    _valid: Tensor | None = None
    _fill: int = 0
    _next_shard: int = 0

    def add(self, resid: Float[Tensor, "batch layer pos d"], valid: Bool[Tensor, "batch pos"]) -> None:
        """Append rows (a CPU tensor in the store dtype); writes shards as they fill."""
        if self._buf is None:
            self._buf = torch.empty((self.shard_size, *resid.shape[1:]), dtype=resid.dtype)
            self._valid = torch.empty((self.shard_size, valid.shape[1]), dtype=torch.bool)
        done = 0
        while done < resid.shape[0]:
            take = min(self.shard_size - self._fill, resid.shape[0] - done)
            self._buf[self._fill:self._fill + take] = resid[done:done + take]
            self._valid[self._fill:self._fill + take] = valid[done:done + take]
            self._fill += take
            done += take
            if self._fill == self.shard_size:
                self._write_shard()

    def _write_shard(self) -> None:
        path = self.folder / shard_name(self._next_shard)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"resid": self._buf[:self._fill].contiguous(), "valid": self._valid[:self._fill].contiguous()},
                  str(tmp))
        os.replace(tmp, path)
        self._next_shard += 1
        self._fill = 0

    def finish(self) -> None:
        if self._fill:
            self._write_shard()
        self.meta["complete"] = True
        self.meta["n_shards"] = self._next_shard
        _atomic_write_bytes(self.folder / "meta.json", json.dumps(self.meta, indent=2).encode())


def open_writer(folder: str | os.PathLike, meta: dict, samples: pd.DataFrame, shard_size: int) -> StoreWriter:
    """Create (or resume) a store. Call `check_folder` first, while nothing has been written yet."""
    folder = Path(folder)
    old = check_folder(folder, meta)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp"):  # partial files of a killed writer
        stale.unlink()
    n_done = 0
    if old is not None:
        while (folder / shard_name(n_done)).exists():
            n_done += 1
        for extra in folder.glob("shard_*.safetensors"):  # shards past a gap cannot be trusted
            if int(extra.stem.split("_")[1]) >= n_done:
                extra.unlink()
    meta = {**meta, "complete": False, "n_shards": None}
    if old is None:
        _atomic_write_bytes(folder / "samples.jsonl", samples_jsonl(samples))
    _atomic_write_bytes(folder / "meta.json", json.dumps(meta, indent=2).encode())
    return StoreWriter(folder=folder, meta=meta, shard_size=shard_size, start_row=min(n_done * shard_size,
                       meta["n_samples"]), _next_shard=n_done)


def _memmap_tensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map every tensor of a safetensors file as numpy (bf16 as uint16 bits)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end == start:
            out[name] = np.zeros(shape, dtype=_NP[info["dtype"]])
            continue
        out[name] = np.memmap(path, dtype=_NP[info["dtype"]], mode="r", offset=8 + header_len + start, shape=shape)
    return out


def to_float32(x: np.ndarray | Tensor, stored: str) -> np.ndarray:
    """Stored values -> float32 numpy (bf16 bits widened; float32 passes through without a copy)."""
    if isinstance(x, Tensor):
        return x.numpy() if x.dtype == torch.float32 else x.float().numpy()
    if stored == "bfloat16":
        return (np.asarray(x).astype(np.uint32) << 16).view(np.float32)
    return x if x.dtype == np.float32 else np.asarray(x, dtype=np.float32)


@dataclass
class Part:
    """A block of consecutive rows: a memory-mapped shard or an in-memory tensor (stored dtype)."""

    resid: np.ndarray | Tensor  # [n, layer, pos, d]
    valid: np.ndarray           # [n, pos] bool
    stored: str                 # "float32" | "bfloat16" | "float16"

    @property
    def n(self) -> int:
        return int(self.resid.shape[0])

    def take(self, index: Any) -> np.ndarray:
        """`resid[index]` as float32 numpy (reads only the indexed cells from a memory map)."""
        x = self.resid[index]
        return to_float32(x, self.stored)


def open_parts(folder: str | os.PathLike, meta: dict) -> list[Part]:
    folder = Path(folder)
    if not meta.get("complete"):
        raise ValueError(f"the cache in {folder} is incomplete (its writer stopped). Run the same interp.cache "
                         f"call (or `codi-lens cache`) with out={str(folder)!r} again to resume it.")
    parts = []
    for i in range(meta["n_shards"]):
        path = folder / shard_name(i)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; the cache is damaged. Delete {folder} and cache again.")
        t = _memmap_tensors(path)
        parts.append(Part(resid=t["resid"], valid=np.asarray(t["valid"]), stored=meta["dtype"]))
    return parts


EXTRA_KEYS = ("latent_pre_prj", "latent_post_prj", "response_ids", "response_mask")  # CODI caches' extras files


def load_extras(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the latent views and response ids of a CODI cache folder (empty dict for a plain-model cache).

    >>> load_extras("runs/cache-smol")["latent_post_prj"].shape     # [sample, k, d] float32
    """
    folder = Path(folder)
    files = sorted(folder.glob("extras_*.safetensors"))
    if not files:
        return {}
    parts = [load_file(str(f)) for f in files]
    out = {}
    for k in EXTRA_KEYS:
        t = torch.cat([p[k] for p in parts])
        out[k] = t.float().numpy() if t.is_floating_point() else t.numpy()
    return out
