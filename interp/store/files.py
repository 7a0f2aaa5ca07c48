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
    """`shard_00003.safetensors` for i = 3.

    >>> shard_name(3)
    'shard_00003.safetensors'
    """
    return SHARD.format(i)


def extras_name(i: int) -> str:
    """`extras_00003.safetensors` for i = 3: the extras of the rows of shard i.

    >>> extras_name(3)
    'extras_00003.safetensors'
    """
    return EXTRAS.format(i)


def files_like(folder: Path, pattern: str) -> list[Path]:
    """The files of `folder` named like `pattern` (SHARD or EXTRAS), sorted.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in (shard_name(1), shard_name(0), extras_name(0), META):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [f.name for f in files_like(folder, SHARD)]
    ['shard_00000.safetensors', 'shard_00001.safetensors']
    """
    return sorted(folder.glob(pattern.replace("{:05d}", "*")))


def file_index(path: Path) -> int:
    """3 for `shard_00003.safetensors` or `extras_00003.safetensors`.

    >>> file_index(Path(shard_name(3))), file_index(Path("runs/c") / extras_name(12))
    (3, 12)
    """
    return int(path.stem.split("_")[1])


def shard_rows(shard_size: int | None, row_bytes: int, batch_size: int) -> int:
    """Rows per shard: `shard_size` when given, else about SHARD_BYTES per shard in whole batches.

    >>> shard_rows(None, 1 << 20, 16), shard_rows(3, 1 << 20, 16)
    (256, 3)
    """
    return int(shard_size or max(batch_size, SHARD_BYTES // max(row_bytes, 1) // batch_size * batch_size))


def verify_file(path: Path, expected: str | None) -> None:
    """Raise if `path` does not hash to `expected` (no-op when no checksum was recorded: an older store).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / shard_name(0)
    >>> _ = path.write_bytes(b"rows")
    >>> verify_file(path, formats.file_sha256(path))       # matches: returns None
    >>> verify_file(path, None)                            # no checksum recorded: nothing to check
    >>> verify_file(path, "0" * 64)
    Traceback (most recent call last):
    ...
    ValueError: ...shard_00000.safetensors... re-run the same cache call with a fresh out= folder ...
    """
    formats.verify_file(path, expected, fix=REWRITE)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def samples_jsonl(samples: pd.DataFrame) -> bytes:
    """The bytes of samples.jsonl: one JSON object per row (numpy scalars as Python values, NaN as null).

    >>> samples_jsonl(pd.DataFrame({"id": ["0", "1"], "label": [1.0, np.nan]}))
    b'{"id": "0", "label": 1.0}\\n{"id": "1", "label": null}\\n'
    """
    rows = samples.to_dict(orient="records")
    return "".join(json.dumps({k: _json_value(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                   for r in rows).encode()


def samples_hash(samples: pd.DataFrame) -> str:
    """Short hash of the sample table: a store of other samples is another store.

    >>> a = pd.DataFrame({"id": ["0"], "text": ["Hi"]})
    >>> len(samples_hash(a)), samples_hash(a) == samples_hash(a.assign(text=["Hello"]))
    (16, False)
    """
    return hashlib.sha256(samples_jsonl(samples)).hexdigest()[:16]


def write_samples(folder: str | os.PathLike, samples: pd.DataFrame) -> None:
    """(Re)write samples.jsonl atomically (the generated text of a CODI run joins the table after the run).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_samples(folder, pd.DataFrame({"id": ["0"], "text": ["Hi"]}))
    >>> (Path(folder) / SAMPLES).read_text()
    '{"id": "0", "text": "Hi"}\\n'
    """
    formats.atomic_write_bytes(Path(folder) / SAMPLES, samples_jsonl(samples))


def read_meta(folder: str | os.PathLike) -> dict:
    """meta.json of a store; raises naming the file when it is missing, garbled or not a store's.

    >>> import interp, tempfile
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = interp.cache(interp.load_model("tiny-gpt2"), ["a b", "c"], layers=[1], out=out, progress=False)
    >>> meta = read_meta(out)
    >>> meta["format"], meta["layers"], meta["n_samples"], meta["complete"]
    ('codi-lens-activation-cache', [1], 2, True)
    >>> read_meta(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: ... holds no activation cache (no meta.json). Write one with interp.cache(model, prompts, ...
    """
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
    """samples.jsonl as a DataFrame; a cut or edited line raises naming the file and the line.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_samples(folder, pd.DataFrame({"id": ["0", "1"], "text": ["Hi", "a b"]}))
    >>> read_samples(folder)["text"].tolist()
    ['Hi', 'a b']
    """
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
    reuse) or None (new/empty folder). Raises if the folder holds another model's cache or other settings.

    >>> import interp, tempfile
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = interp.cache(interp.load_model("tiny-gpt2"), ["a b"], layers=[1], out=out, progress=False)
    >>> check_folder(tempfile.mkdtemp(), {}) is None                      # empty folder: a new store
    True
    >>> check_folder(out, read_meta(out))["complete"]                     # same settings: reuse or resume
    True
    >>> check_folder(out, {**read_meta(out), "layers": [2]})
    Traceback (most recent call last):
    ...
    ValueError: ... holds a cache of this model with other settings (layers differs). Pass a new out= folder, ...
    """
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
