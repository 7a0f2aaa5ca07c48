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

import formats
from formats import TMP_PREFIX, file_sha256, tmp_name

__all__ = ["FORMAT", "Part", "StoreWriter", "open_writer", "read_meta", "read_samples", "open_parts",
           "check_folder", "samples_hash", "EXTRA_KEYS", "load_extras", "shard_rows",
           "SHARD_BYTES", "file_sha256", "verify_file", "tmp_name", "TMP_PREFIX"]

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


REWRITE = "re-run the same cache call with a fresh out= folder (or delete the folder and cache again)"


def verify_file(path: Path, expected: str | None) -> None:
    """Raise if `path` does not hash to `expected` (no-op when no checksum was recorded: an older store)."""
    formats.verify_file(path, expected, fix=REWRITE)


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
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the cache is damaged. To fix it, {REWRITE}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        meta = meta if isinstance(meta, dict) else {}
        raise ValueError(f"{path} is not a codi-lens activation cache (format={meta.get('format')!r}).")
    return meta


def read_samples(folder: str | os.PathLike) -> pd.DataFrame:
    path = Path(folder) / "samples.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the cache is damaged. To fix it, {REWRITE}.")
    rows = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {i} is not valid JSON ({err}); the file was cut or edited. To fix it, "
                             f"{REWRITE}.") from None
    return pd.DataFrame(rows)


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
        tmp = tmp_name(path)
        save_file({"resid": self._buf[:self._fill].contiguous(), "valid": self._valid[:self._fill].contiguous()},
                  str(tmp))
        digest = file_sha256(tmp)
        os.replace(tmp, path)
        self.meta["checksums"][path.name] = digest  # recorded at once, so a resume can verify this shard
        formats.atomic_write_bytes(self.folder / "meta.json", json.dumps(self.meta, indent=2).encode())
        self._next_shard += 1
        self._fill = 0

    def finish(self) -> None:
        if self._fill:
            self._write_shard()
        self.meta["complete"] = True
        self.meta["n_shards"] = self._next_shard
        formats.atomic_write_bytes(self.folder / "meta.json", json.dumps(self.meta, indent=2).encode())


def open_writer(folder: str | os.PathLike, meta: dict, samples: pd.DataFrame, shard_size: int) -> StoreWriter:
    """Create (or resume) a store. Call `check_folder` first, while nothing has been written yet."""
    folder = Path(folder)
    old = check_folder(folder, meta)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{TMP_PREFIX}*.tmp"):  # partial files of a killed writer (never a user's file)
        stale.unlink()
    n_done = 0
    sums: dict[str, str] = {}
    if old is not None:
        old_sums = old.get("checksums")
        while (folder / shard_name(n_done)).exists():
            name = shard_name(n_done)
            if old_sums is not None:
                if name not in old_sums:  # killed between the shard's rename and its checksum: write it again
                    break
                verify_file(folder / name, old_sums[name])
                sums[name] = old_sums[name]
                extra = folder / name.replace("shard_", "extras_")
                if extra.name in old_sums and extra.exists():
                    verify_file(extra, old_sums[extra.name])
                    sums[extra.name] = old_sums[extra.name]
            n_done += 1
        for extra in folder.glob("shard_*.safetensors"):  # shards past a gap cannot be trusted
            if int(extra.stem.split("_")[1]) >= n_done:
                extra.unlink()
    meta = {**meta, "complete": False, "n_shards": None, "checksums": sums}
    if old is None:
        formats.atomic_write_bytes(folder / "samples.jsonl", samples_jsonl(samples))
    formats.atomic_write_bytes(folder / "meta.json", json.dumps(meta, indent=2).encode())
    return StoreWriter(folder=folder, meta=meta, shard_size=shard_size, start_row=min(n_done * shard_size,
                       meta["n_samples"]), _next_shard=n_done)


def _memmap_tensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map every tensor of a safetensors file as numpy (bf16 as uint16 bits)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError(f"header length {header_len} exceeds the file size {size}")
            header = json.loads(f.read(header_len))
        ends = [info["data_offsets"][1] for k, info in header.items() if k != "__metadata__"]
        if 8 + header_len + max(ends, default=0) > size:
            raise ValueError(f"the tensors end at byte {8 + header_len + max(ends)} but the file has {size}")
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is truncated or not a safetensors file ({err}). To fix it, {REWRITE}.") from None
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
    path: Path | None = None     # the shard file, verified against `checksum` on first access
    checksum: str | None = None

    @property
    def n(self) -> int:
        return int(self.resid.shape[0])

    def take(self, index: Any) -> np.ndarray:
        """`resid[index]` as float32 numpy (reads only the indexed cells from a memory map)."""
        if self.checksum is not None:  # lazily, once per shard: opening a store stays a memory map
            verify_file(self.path, self.checksum)
            self.checksum = None
        x = self.resid[index]
        return to_float32(x, self.stored)


def _open_shard(path: Path, rows: int, inner: tuple, want_dtype: str, mpath: Path, dtype: str) -> dict[str, np.ndarray]:
    """Memory-map one shard after checking its header against meta.json (dtype, shapes)."""
    t = _memmap_tensors(path)  # raises, naming the file, if it is truncated or not safetensors
    with open(path, "rb") as f:  # the header only: the data stay unread
        (hl,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hl))
    got = header.get("resid", {}).get("dtype")
    if got != want_dtype:
        raise ValueError(f"{path} stores {got} but {mpath} says dtype={dtype!r}; the files disagree. "
                         f"To fix it, {REWRITE}.")
    if "resid" not in t or "valid" not in t or t["resid"].shape != (rows, *inner) or \
            t["valid"].shape != (rows, inner[1]):
        shapes = {k: tuple(v.shape) for k, v in t.items()}
        raise ValueError(f"{path} holds {shapes}, but {mpath} expects resid {(rows, *inner)} and valid "
                         f"{(rows, inner[1])}; the shard is from another cache or the files were edited. To fix "
                         f"it, {REWRITE}.")
    return t


def open_parts(folder: str | os.PathLike, meta: dict) -> list[Part]:
    folder = Path(folder)
    if not meta.get("complete"):
        raise ValueError(f"the cache in {folder} is incomplete (its writer stopped). Run the same interp.cache "
                         f"call (or `codi-lens cache`) with out={str(folder)!r} again to resume it.")
    mpath = folder / "meta.json"
    n_shards, n, size = meta.get("n_shards"), meta.get("n_samples"), meta.get("shard_size")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (n_shards, n, size)) or not size:
        raise ValueError(f"{mpath}: n_shards={n_shards!r}, n_samples={n!r}, shard_size={size!r} are not valid "
                         f"counts; the file was edited or damaged. To fix it, {REWRITE}.")
    if n_shards != -(-n // size):
        raise ValueError(f"{mpath} says n_shards={n_shards}, but {n} samples in shards of {size} make "
                         f"{-(-n // size)}; the file was edited. To fix it, {REWRITE}.")
    on_disk = sorted(folder.glob("shard_*.safetensors"))
    if len(on_disk) != n_shards:
        raise ValueError(f"{folder} holds {len(on_disk)} shard files but {mpath} says n_shards={n_shards}. To fix "
                         f"it, {REWRITE}.")
    want_dtype = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}.get(meta.get("dtype"))
    if want_dtype is None:
        raise ValueError(f"{mpath}: dtype={meta.get('dtype')!r} is not a store dtype (float32, bfloat16, "
                         f"float16). To fix it, {REWRITE}.")
    inner = (len(meta["layers"]), len(meta["positions"]), meta["d_model"])
    sums = meta.get("checksums")
    parts = []
    for i in range(n_shards):
        path = folder / shard_name(i)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; the cache is damaged. To fix it, {REWRITE}.")
        if sums is not None and path.name not in sums:
            raise ValueError(f"{mpath} records no checksum for {path.name}. To fix it, {REWRITE}.")
        t = _open_shard(path, min(size, n - i * size), inner, want_dtype, mpath, meta["dtype"])
        parts.append(Part(resid=t["resid"], valid=np.asarray(t["valid"]), stored=meta["dtype"], path=path,
                          checksum=None if sums is None else sums[path.name]))
    samples = folder / "samples.jsonl"
    if samples.exists():
        n_rows = sum(1 for line in samples.read_text(errors="replace").splitlines() if line.strip())
        if n_rows != n:
            raise ValueError(f"{samples} has {n_rows} rows but {mpath} says n_samples={n}; the file was cut or "
                             f"edited. To fix it, {REWRITE}.")
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
    meta_path = folder / "meta.json"
    sums = json.loads(meta_path.read_text()).get("checksums") if meta_path.exists() else None
    parts = []
    for f in files:
        if sums is not None:
            if f.name not in sums:
                raise ValueError(f"{meta_path} records no checksum for {f}. To fix it, {REWRITE}.")
            verify_file(f, sums[f.name])
        try:
            parts.append(load_file(str(f)))
        except Exception as err:  # safetensors raises its own error type, naming no file
            raise ValueError(f"{f} cannot be read ({err}). To fix it, {REWRITE}.") from None
    out = {}
    for k in EXTRA_KEYS:
        missing = [str(f) for f, p in zip(files, parts) if k not in p]
        if missing:
            raise ValueError(f"{missing[0]} has no {k!r} tensor. To fix it, {REWRITE}.")
        t = torch.cat([p[k] for p in parts])
        out[k] = t.float().numpy() if t.is_floating_point() else t.numpy()
    return out
