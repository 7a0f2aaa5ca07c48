"""Atomic writes: every file is written under a project temporary name and renamed into place.

A killed writer leaves whole files or a temporary that only codi-lens's own cleaning removes; a user's file named
`.notes.tmp` is never touched, because project temporaries carry the prefix `.codi-lens-` and a random suffix.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "a.txt", "hello")
    >>> (d / "a.txt").read_text()
    'hello'
    >>> with staged_folder(d / "out") as tmp:          # a folder appears under its final name only when complete
    ...     atomic_write_text(tmp / "x.txt", "1")
    >>> sorted(p.name for p in (d / "out").iterdir())
    ['x.txt']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["TMP_PREFIX", "tmp_name", "is_temporary", "clean_temporaries", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_json", "atomic_save_safetensors", "staged_folder", "file_sha256", "verify_file",
           "verify_files", "read_json"]

TMP_PREFIX = ".codi-lens-"  # temporaries: `.codi-lens-<name>.<random>.tmp`; only these are ever cleaned up
_TMP_SUFFIX = ".tmp"
_OLD_SUFFIX = ".old"  # the previous folder during a replace (see staged_folder)


def tmp_name(path: str | os.PathLike) -> Path:
    """A temporary sibling of `path` that cannot collide with a user's file (project prefix + random suffix).

    >>> tmp_name("c/meta.json").name.startswith(".codi-lens-meta.json.")
    True
    """
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{path.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}")


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a name made by `tmp_name` (and only for those).

    >>> is_temporary(tmp_name("x/meta.json")), is_temporary("x/.notes.tmp")
    (True, False)
    """
    name = Path(path).name
    return name.startswith(TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def clean_temporaries(folder: str | os.PathLike, stem: str | None = None) -> list[Path]:
    """Remove the project temporaries in `folder` (only those of `stem`'s final name when given); returns them.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = tmp_name(d / "a").write_text(""); _ = (d / ".mine.tmp").write_text("")
    >>> len(clean_temporaries(d)), sorted(p.name for p in d.iterdir())     # the user's .mine.tmp stays
    (1, ['.mine.tmp'])
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f"{TMP_PREFIX}{stem}.*{_TMP_SUFFIX}" if stem else f"{TMP_PREFIX}*{_TMP_SUFFIX}"
    gone = []
    for p in sorted(folder.glob(pattern)):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
        gone.append(p)
    return gone


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a synced temporary and a rename: readers see the old or the new file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.bin"; atomic_write_bytes(p, b"ab"); p.read_bytes()
    b'ab'
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "note.txt"; atomic_write_text(p, "café"); p.read_bytes()
    b'caf\\xc3\\xa9'
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Serialise `obj` first (nothing is written when it is not JSON), then write it atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.json"; atomic_write_json(p, [1, 2]); read_json(p)
    [1, 2]
    """
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False))


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a damaged one raises ValueError naming the file, the line and the column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.json"; _ = p.write_text('{"a": ')
    >>> read_json(p)
    Traceback (most recent call last):
    ...
    ValueError: ...bad.json is not valid JSON (line 1, column 7: Expecting value); the file is damaged or ...
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); the file is "
                         f"damaged or was edited by hand.") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}); the file is damaged.") from None


def atomic_save_safetensors(tensors: Mapping[str, Any], path: str | os.PathLike,
                            metadata: Mapping[str, str] | None = None) -> str:
    """Save torch tensors or numpy arrays as safetensors, atomically; returns the file's sha256.

    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
    >>> len(atomic_save_safetensors({"x": np.zeros(3, np.float32)}, p))
    64
    """
    path = Path(path)
    values = list(tensors.values())
    if values and type(values[0]).__module__.startswith("numpy"):
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    tmp = tmp_name(path)
    try:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata else None)
        digest = file_sha256(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return digest


def _set_aside_name(final: Path) -> Path:
    """Where `staged_folder(replace=True)` keeps the previous folder during the swap (never a `.tmp` name, so
    `clean_temporaries` cannot remove it)."""
    return final.with_name(f"{TMP_PREFIX}{final.name}.{secrets.token_hex(4)}{_OLD_SUFFIX}")


def _recover_set_aside(final: Path) -> None:
    """Finish a swap that a kill interrupted: restore the previous folder when `final` is missing, else drop it."""
    for old in sorted(final.parent.glob(f"{TMP_PREFIX}{final.name}.*{_OLD_SUFFIX}")):
        if not final.exists():
            os.replace(old, final)
        else:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary sibling name; it takes `final`'s name only when the block succeeds.

    On an exception the temporary is removed and `final` is as it was. With `replace=True` an existing `final` is
    swapped out (renamed aside, then removed) only after the new folder is complete; a kill between the two renames
    is repaired by the next call (the previous folder comes back). Otherwise an existing `final` is an error raised
    before anything is written. Stale temporaries of the same name (a killed earlier run) are removed first.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for text in ("old", "new"):
    ...     with staged_folder(d / "run", replace=True) as tmp:
    ...         atomic_write_text(tmp / "v.txt", text)
    >>> (d / "run" / "v.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('new', ['run'])
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _recover_set_aside(final)
    if final.exists() and not replace:
        raise FileExistsError(f"{final} already exists; choose another folder or remove it first.")
    clean_temporaries(final.parent, final.name)
    tmp = tmp_name(final)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = _set_aside_name(final)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def verify_files(folder: str | os.PathLike, checksums: Mapping[str, str], fix: str, what: str = "the folder") -> None:
    """Every file that `checksums` (name relative to `folder` -> sha256) records is there and hashes to its value;
    a ValueError names the first one missing or changed.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("x")
    >>> verify_files(d, {"a.txt": file_sha256(d / "a.txt")}, fix="write it again")
    >>> verify_files(d, {"b.txt": "0" * 64}, fix="write it again", what="the checkpoint")
    Traceback (most recent call last):
    ...
    ValueError: .../b.txt is missing from the checkpoint (it was recorded when it was written). To fix it, ...
    """
    for rel, digest in checksums.items():
        path = Path(folder) / rel
        if not path.is_file():
            raise ValueError(f"{path} is missing from {what} (it was recorded when it was written). To fix it, {fix}.")
        verify_file(path, digest, fix=fix)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, read in chunks.

    >>> len(file_sha256(__file__))
    64
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_file(path: str | os.PathLike, expected: str | None, fix: str = "write it again") -> None:
    """Raise ValueError naming `path` if it does not hash to `expected` (no-op when nothing was recorded).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"; _ = p.write_bytes(b"x"); verify_file(p, file_sha256(p))
    """
    if expected is not None and file_sha256(path) != expected:
        raise ValueError(f"{path} does not match the checksum recorded when it was written: the file was changed, "
                         f"damaged or swapped. To fix it, {fix}.")
