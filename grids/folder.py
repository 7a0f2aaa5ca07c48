"""How a result grid lives on disk: one folder, every file written atomically and checked when read back.

    grid_dir/
      grid.json            format tag, layers, positions, metrics (NaN as null), findings, config, a sha256 per
                           other file, and `content_sha256`: the sha256 of grid.json's own content (canonical JSON
                           of every other key), so a hand edit of any value is caught
      table.csv            the tidy table (one row per cell), for people and spreadsheets
      scores.safetensors   per-sample values [layer, position, sample] (and a probe grid's labels), when the grid
                           has them

A new folder is built under a temporary name and renamed into place (`formats.staged_folder`); an existing grid
folder is updated file by file (each file atomic), grid.json last, so a killed writer leaves either the old grid
or files that grid.json's checksums refuse. `read_folder` verifies every checksum, the shapes and the consistency
of layers, positions, metrics and findings; every error names the file and the fix. Folders written before the
checksums existed (format `codi-lens.probegrid/1`) still load, with the shape checks.

    >>> import tempfile, pathlib
    >>> from grids.folder import write_folder, read_folder, GRID_JSON
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "g"
    >>> _ = write_folder(d, {"format": "x/1", "layers": [0]}, "layer\\n0\\n", {})
    >>> read_folder(d)[0]["layers"]
    [0]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

import formats

__all__ = ["GRID_JSON", "TABLE_CSV", "SCORES_FILE", "GRID_FILES", "REWRITE", "json_safe", "from_json_array",
           "content_sha256", "write_folder", "read_folder", "read_format"]

GRID_JSON = "grid.json"
TABLE_CSV = "table.csv"
SCORES_FILE = "scores.safetensors"
GRID_FILES = (GRID_JSON, TABLE_CSV, SCORES_FILE)
REWRITE = "save the grid again from the code that made it (grid.save(folder))"


def json_safe(x: Any) -> Any:
    """numpy values -> JSON-able python (NaN/inf -> None), recursively.

    >>> json_safe({"a": np.array([1.0, np.nan]), "b": np.int64(3)})
    {'a': [1.0, None], 'b': 3}
    """
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def from_json_array(x: list) -> np.ndarray:
    """A [rows][cols] JSON list (None = NaN) -> float64 array.

    >>> from_json_array([[1, None]]).tolist()
    [[1.0, nan]]
    """
    return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=np.float64)


def content_sha256(payload: dict) -> str:
    """sha256 of the canonical JSON of `payload` without its `content_sha256` key (what grid.json records).

    >>> content_sha256({"a": 1}) == content_sha256({"a": 1, "content_sha256": "x"})
    True
    """
    rest = {k: v for k, v in payload.items() if k != "content_sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_files(folder: Path, payload: dict, table: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the data files, record their checksums in `payload`, write grid.json last (all atomic)."""
    files = {}
    formats.atomic_write_text(folder / TABLE_CSV, table)
    files[TABLE_CSV] = formats.file_sha256(folder / TABLE_CSV)
    if arrays:
        files[SCORES_FILE] = formats.atomic_save_safetensors(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()}, folder / SCORES_FILE)
    elif (folder / SCORES_FILE).exists():  # a stale file of an earlier grid in this folder
        (folder / SCORES_FILE).unlink()
    payload = {**payload, "files": files}
    payload["content_sha256"] = content_sha256(payload)
    formats.atomic_write_json(folder / GRID_JSON, payload)


def write_folder(folder: str | os.PathLike, payload: dict, table: str, arrays: dict[str, np.ndarray]) -> Path:
    """Write a grid folder (see the module docstring); `payload` must already be JSON-able.

    Refuses a path that is a file, before anything is written. Returns the folder.

    >>> import tempfile, pathlib
    >>> d = write_folder(pathlib.Path(tempfile.mkdtemp()) / "g", {"format": "x/1"}, "", {})
    >>> sorted(p.name for p in d.iterdir())
    ['grid.json', 'table.csv']
    """
    folder = Path(folder)
    json.dumps(payload, allow_nan=False)  # not JSON-able: raise before anything is written
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder; pass a folder path for the grid.")
    if not folder.exists():
        with formats.staged_folder(folder) as tmp:
            _write_files(tmp, payload, table, arrays)
    else:
        formats.clean_temporaries(folder)
        _write_files(folder, payload, table, arrays)
    return folder


def read_format(folder: str | os.PathLike) -> str | None:
    """The format tag of a grid folder's grid.json (None when it has none); raises if there is no grid.json.

    >>> import tempfile, pathlib
    >>> read_format(write_folder(pathlib.Path(tempfile.mkdtemp()) / "g", {"format": "x/1"}, "", {}))
    'x/1'
    """
    path = Path(folder) / GRID_JSON
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {folder} a folder written by grid.save(folder)?")
    d = formats.read_json(path)
    if not isinstance(d, dict):
        raise ValueError(f"{path} holds a JSON {type(d).__name__}, not a grid; the file is damaged. To fix it, "
                         f"{REWRITE}.")
    return d.get("format")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.exists():
        raise FileNotFoundError(f"{path} is missing, but {path.parent / GRID_JSON} lists it. To fix it, {REWRITE}.")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types, naming no file
        raise ValueError(f"{path} cannot be read ({err}); it is truncated or damaged. To fix it, {REWRITE}.") from None


def read_folder(folder: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(grid.json's content, the arrays of scores.safetensors or {}), every recorded checksum verified.

    Shapes and consistency are checked by the grid class that reads them (`ResultGrid.from_parts`).

    >>> import tempfile, pathlib
    >>> payload, arrays = read_folder(write_folder(pathlib.Path(tempfile.mkdtemp()) / "g", {"format": "x"}, "", {}))
    >>> payload["format"], arrays
    ('x', {})
    """
    folder = Path(folder)
    read_format(folder)  # exists, parses, is an object
    path = folder / GRID_JSON
    payload = formats.read_json(path)
    recorded = payload.get("content_sha256")
    if recorded is not None and content_sha256(payload) != recorded:
        raise ValueError(f"{path} does not match the checksum recorded in it: the file was edited by hand or "
                         f"damaged. To fix it, {REWRITE}.")
    files = payload.get("files")
    if recorded is not None and not isinstance(files, dict):
        raise ValueError(f"{path} has no 'files' table of checksums; the file is damaged. To fix it, {REWRITE}.")
    unknown = sorted(set(files or {}) - set(GRID_FILES[1:]))
    if unknown:
        raise ValueError(f"{path} lists an unknown file {unknown[0]!r}; the file is damaged. To fix it, {REWRITE}.")
    formats.verify_files(folder, files or {}, fix=REWRITE, what=f"the grid folder ({path.name} lists it)")
    has_scores = SCORES_FILE in (files or {}) or (files is None and (folder / SCORES_FILE).exists())
    return payload, (_read_arrays(folder / SCORES_FILE) if has_scores else {})
