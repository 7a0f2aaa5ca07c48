"""The names, metadata and sample table of an activation store (the layout is in `interp.store`'s docstring).

    >>> shard_name(3), extras_name(3), META, SAMPLES
    ('shard_00003.safetensors', 'extras_00003.safetensors', 'meta.json', 'samples.jsonl')
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import formats

__all__ = ["FORMAT", "VERSION", "META", "SAMPLES", "SHARD", "EXTRAS", "SHARD_BYTES", "IDENTITY_KEYS", "SETTING_KEYS",
           "REWRITE", "shard_name", "extras_name", "files_like", "file_index", "shard_rows", "verify_file",
           "samples_jsonl", "samples_hash", "write_samples", "read_meta", "read_samples", "check_folder"]

FORMAT = "codi-lens-activation-cache"  # meta["format"], checked on every load
VERSION = 1
META = "meta.json"
SAMPLES = "samples.jsonl"
SHARD = "shard_{:05d}.safetensors"
EXTRAS = "extras_{:05d}.safetensors"
SHARD_BYTES = 256 << 20  # default shard size
IDENTITY_KEYS = ("model", "config_hash")  # a folder holding other values holds another model's cache
SETTING_KEYS = ("layers", "positions", "samples_hash", "dtype", "shard_size", "codi")
REWRITE = "re-run the same cache call with a fresh out= folder (or delete the folder and cache again)"


def shard_name(i: int) -> str:
    """`shard_00003.safetensors` for i = 3."""
    return SHARD.format(i)


def extras_name(i: int) -> str:
    """`extras_00003.safetensors` for i = 3: the extras of the rows of shard i."""
    return EXTRAS.format(i)


def files_like(folder: Path, pattern: str) -> list[Path]:
    """The files of `folder` named like `pattern` (SHARD or EXTRAS), sorted."""
    return sorted(folder.glob(pattern.replace("{:05d}", "*")))


def file_index(path: Path) -> int:
    """3 for `shard_00003.safetensors` or `extras_00003.safetensors`."""
    return int(path.stem.split("_")[1])


def shard_rows(shard_size: int | None, row_bytes: int, batch_size: int) -> int:
    """Rows per shard: `shard_size` when given, else about SHARD_BYTES per shard in whole batches.

    >>> shard_rows(None, 1 << 20, 16), shard_rows(3, 1 << 20, 16)
    (256, 3)
    """
    return int(shard_size or max(batch_size, SHARD_BYTES // max(row_bytes, 1) // batch_size * batch_size))


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
    """The bytes of samples.jsonl: one JSON object per row (numpy scalars as Python values, NaN as null)."""
    rows = samples.to_dict(orient="records")
    return "".join(json.dumps({k: _json_value(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                   for r in rows).encode()


def samples_hash(samples: pd.DataFrame) -> str:
    """Short hash of the sample table: a store of other samples is another store."""
    return hashlib.sha256(samples_jsonl(samples)).hexdigest()[:16]


def write_samples(folder: str | os.PathLike, samples: pd.DataFrame) -> None:
    """(Re)write samples.jsonl atomically (the generated text of a CODI run joins the table after the run)."""
    formats.atomic_write_bytes(Path(folder) / SAMPLES, samples_jsonl(samples))


def read_meta(folder: str | os.PathLike) -> dict:
    """meta.json of a store; raises naming the file when it is missing, garbled or not a store's."""
    path = Path(folder) / META
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no activation cache (no {META}). Write one with "
                                f"interp.cache(model, prompts, out={str(folder)!r}).")
    try:
        meta = formats.read_json(path)
    except ValueError as err:
        raise ValueError(f"{err} The cache is damaged. To fix it, {REWRITE}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        meta = meta if isinstance(meta, dict) else {}
        raise ValueError(f"{path} is not a codi-lens activation cache (format={meta.get('format')!r}).")
    return meta


def read_samples(folder: str | os.PathLike) -> pd.DataFrame:
    """samples.jsonl as a DataFrame; a cut or edited line raises naming the file and the line."""
    path = Path(folder) / SAMPLES
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
    if not (folder / META).exists():
        if folder.exists() and (files_like(folder, SHARD) or files_like(folder, EXTRAS)):
            raise ValueError(f"{folder} holds shards but no {META}; delete it or pass another folder.")
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
