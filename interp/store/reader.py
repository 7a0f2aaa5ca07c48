"""Reading a store: shards memory-mapped after checking their headers against meta.json, verified against their
checksum on first access; extras read and verified once.

    >>> import numpy as np
    >>> to_float32(np.array([16256], dtype=np.uint16), "bfloat16")     # bf16 bits widened to float32
    array([1.], dtype=float32)
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from interp.store.files import EXTRAS, META, REWRITE, SAMPLES, SHARD, extras_name, files_like, shard_name, verify_file

__all__ = ["Part", "open_parts", "read_extras", "to_float32"]

_NP = {"F32": np.float32, "BF16": np.uint16, "F16": np.float16, "BOOL": np.bool_}
_ST_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


def _memmap_tensors(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, every tensor of a safetensors file memory-mapped as numpy, bf16 as uint16 bits)."""
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
    return header, out


def to_float32(x: np.ndarray | Tensor, stored: str) -> np.ndarray:
    """Stored values -> float32 numpy (bf16 bits widened; float32 passes through without a copy).

    >>> to_float32(np.array([16256, 49216], dtype=np.uint16), "bfloat16")      # bf16 bits of 1.0 and -3.0
    array([ 1., -3.], dtype=float32)
    >>> x = np.ones(2, np.float32); to_float32(x, "float32") is x
    True
    >>> to_float32(torch.tensor([0.5], dtype=torch.float16), "float16")
    array([0.5], dtype=float32)
    """
    if isinstance(x, Tensor):
        return x.numpy() if x.dtype == torch.float32 else x.float().numpy()
    if stored == "bfloat16":
        return (np.asarray(x).astype(np.uint32) << 16).view(np.float32)
    return x if x.dtype == np.float32 else np.asarray(x, dtype=np.float32)


@dataclass
class Part:
    """A block of consecutive rows: a memory-mapped shard or an in-memory tensor (stored dtype).

    >>> part = Part(resid=torch.arange(8.0).reshape(2, 1, 2, 2), valid=np.ones((2, 2), bool), stored="float32")
    >>> part.n, part.take((slice(None), 0, 1)).tolist()          # rows x (layer 0, position 1) -> [n, d]
    (2, [[2.0, 3.0], [6.0, 7.0]])
    """

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
        return to_float32(self.resid[index], self.stored)


def _open_shard(path: Path, rows: int, inner: tuple, meta: dict, mpath: Path) -> dict[str, np.ndarray]:
    """Memory-map one shard after checking its header against meta.json (dtype, shapes)."""
    header, t = _memmap_tensors(path)  # raises, naming the file, if it is truncated or not safetensors
    got = header.get("resid", {}).get("dtype")
    if got != _ST_DTYPE[meta["dtype"]]:
        raise ValueError(f"{path} stores {got} but {mpath} says dtype={meta['dtype']!r}; the files disagree. "
                         f"To fix it, {REWRITE}.")
    if "resid" not in t or "valid" not in t or t["resid"].shape != (rows, *inner) or \
            t["valid"].shape != (rows, inner[1]):
        shapes = {k: tuple(v.shape) for k, v in t.items()}
        raise ValueError(f"{path} holds {shapes}, but {mpath} expects resid {(rows, *inner)} and valid "
                         f"{(rows, inner[1])}; the shard is from another cache or the files were edited. To fix "
                         f"it, {REWRITE}.")
    return t


def _check_counts(folder: Path, meta: dict) -> None:
    mpath = folder / META
    if not meta.get("complete"):
        raise ValueError(f"the cache in {folder} is incomplete (its writer stopped). Run the same interp.cache "
                         f"call (or `codi-lens cache`) with out={str(folder)!r} again to resume it.")
    n_shards, n, size = meta.get("n_shards"), meta.get("n_samples"), meta.get("shard_size")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (n_shards, n, size)) or not size:
        raise ValueError(f"{mpath}: n_shards={n_shards!r}, n_samples={n!r}, shard_size={size!r} are not valid "
                         f"counts; the file was edited or damaged. To fix it, {REWRITE}.")
    if n_shards != -(-n // size):
        raise ValueError(f"{mpath} says n_shards={n_shards}, but {n} samples in shards of {size} make "
                         f"{-(-n // size)}; the file was edited. To fix it, {REWRITE}.")
    on_disk = files_like(folder, SHARD)
    if len(on_disk) != n_shards:
        raise ValueError(f"{folder} holds {len(on_disk)} shard files but {mpath} says n_shards={n_shards}. To fix "
                         f"it, {REWRITE}.")
    if meta.get("dtype") not in _ST_DTYPE:
        raise ValueError(f"{mpath}: dtype={meta.get('dtype')!r} is not a store dtype (float32, bfloat16, "
                         f"float16). To fix it, {REWRITE}.")


def open_parts(folder: str | os.PathLike, meta: dict) -> list[Part]:
    """Memory-mapped Parts of a complete store, after checking meta, shard headers and the sample count.

    >>> import interp, tempfile
    >>> from interp.store.files import read_meta
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = interp.cache(interp.load_model("tiny-gpt2"), ["a", "b", "c"], layers=[1], positions=["last"], out=out,
    ...                  shard_size=2, progress=False)
    >>> parts = open_parts(out, read_meta(out))
    >>> [p.n for p in parts], type(parts[0].resid).__name__, parts[0].path.name
    ([2, 1], 'memmap', 'shard_00000.safetensors')
    """
    folder = Path(folder)
    mpath = folder / META
    _check_counts(folder, meta)
    n, size = meta["n_samples"], meta["shard_size"]
    inner = (len(meta["layers"]), len(meta["positions"]), meta["d_model"])
    sums = meta.get("checksums")
    parts = []
    for i in range(meta["n_shards"]):
        path = folder / shard_name(i)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; the cache is damaged. To fix it, {REWRITE}.")
        if sums is not None and path.name not in sums:
            raise ValueError(f"{mpath} records no checksum for {path.name}. To fix it, {REWRITE}.")
        t = _open_shard(path, min(size, n - i * size), inner, meta, mpath)
        parts.append(Part(resid=t["resid"], valid=np.asarray(t["valid"]), stored=meta["dtype"], path=path,
                          checksum=None if sums is None else sums[path.name]))
    samples = folder / SAMPLES
    if samples.exists():
        n_rows = sum(1 for line in samples.read_text(errors="replace").splitlines() if line.strip())
        if n_rows != n:
            raise ValueError(f"{samples} has {n_rows} rows but {mpath} says n_samples={n}; the file was cut or "
                             f"edited. To fix it, {REWRITE}.")
    return parts


def read_extras(folder: str | os.PathLike, meta: dict) -> dict[str, np.ndarray]:
    """The extras of a store (float tensors as float32 numpy), each file verified; {} when it has none.

    One file per shard, named in meta["extras"] (stores written before that key: whatever extras files exist).

    >>> import codi, interp, tempfile
    >>> from interp.store.files import read_meta
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = interp.cache(cm, ["1 + 2 = ?"], layers=[1], positions=["bot"], out=out, progress=False)
    >>> {k: v.shape for k, v in read_extras(out, read_meta(out)).items()}
    {'latent_pre_prj': (1, 2, 64), 'latent_post_prj': (1, 2, 64), 'response_ids': (1, 0), 'response_mask': (1, 0)}
    """
    folder = Path(folder)
    mpath = folder / META
    keys = meta.get("extras")
    files = files_like(folder, EXTRAS)
    if keys is not None:
        if not keys:
            return {}
        n_shards = meta.get("n_shards") or len(files)
        want = [folder / extras_name(i) for i in range(n_shards)]
        if sorted(files) != want:
            raise ValueError(f"{folder} holds extras files {[f.name for f in files]} but {mpath} expects "
                             f"{[f.name for f in want]}. To fix it, {REWRITE}.")
    if not files:
        return {}
    sums = meta.get("checksums")
    parts = []
    for f in files:
        if sums is not None:
            if f.name not in sums:
                raise ValueError(f"{mpath} records no checksum for {f}. To fix it, {REWRITE}.")
            verify_file(f, sums[f.name])
        try:
            parts.append(load_file(str(f)))
        except Exception as err:  # safetensors raises its own error type, naming no file
            raise ValueError(f"{f} cannot be read ({err}). To fix it, {REWRITE}.") from None
    out = {}
    for k in keys or sorted(parts[0]):
        missing = [str(f) for f, p in zip(files, parts) if k not in p]
        if missing:
            raise ValueError(f"{missing[0]} has no {k!r} tensor. To fix it, {REWRITE}.")
        t = torch.cat([p[k] for p in parts])
        out[k] = t.float().numpy() if t.is_floating_point() else t.numpy()
    return out
