"""Validators: each returns the checked (and normalised) value or raises `BadArgument` naming the argument.

    >>> check_layers("layers", [2, 0], n_layers=2)
    [0, 2]
    >>> check_layers("layers", "10", n_layers=30)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: layers='10': must be "all", an integer or a list of integers in 0..30.
    Fix: pass layers=[10] (a list), or "all".
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from argcheck.errors import BadArgument

__all__ = ["check_int", "check_float", "check_bool", "check_str", "check_choice", "check_strings", "check_layers",
           "check_out_folder", "check_path_exists", "check_new_path", "check_floats", "check_ints"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _set(name: str, value: object) -> str:
    """How a user sets `name`: `name=value` for an argument, `--flag value` for a command-line flag."""
    return f"{name} {value}" if name.startswith("-") else f"{name}={value}"


def _range_text(kind: str, min: float | None, max: float | None) -> str:
    if min is not None and max is not None:
        return f"{kind} in {min}..{max}"
    if min is not None:
        return f"{kind} >= {min}"
    if max is not None:
        return f"{kind} <= {max}"
    return kind


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None, fix: str = "",
              none_ok: bool = False) -> int | None:
    """An integer (not a bool, not a float) within [min, max].

    >>> check_int("n", 3, min=1), check_int("seed", None, none_ok=True)
    (3, None)
    """
    if value is None and none_ok:
        return None
    allowed = "must be " + ("None or " if none_ok else "") + ("an integer" if min is None and max is None
                                                               else _range_text("an integer", min, max))
    if not _is_int(value) or (min is not None and value < min) or (max is not None and value > max):
        if not fix and min is not None and (_is_int(value) or isinstance(value, float)):
            fix = f"pass {_set(name, min)} or more" if max is None else f"pass {name} between {min} and {max}"
        raise BadArgument(name, value, allowed, fix)
    return int(value)


def check_float(name: str, value: Any, *, min: float | None = None, max: float | None = None,
                min_open: bool = False, max_open: bool = False, fix: str = "", none_ok: bool = False
                ) -> float | None:
    """A finite real number within [min, max] (`min_open` / `max_open` exclude the bound).

    >>> check_float("lr", 1e-3, min=0, min_open=True)
    0.001
    """
    if value is None and none_ok:
        return None
    lo = "" if min is None else f"{'>' if min_open else '>='} {min}"
    hi = "" if max is None else f"{'<' if max_open else '<='} {max}"
    allowed = "must be a finite number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + \
        (f" {hi}" if hi else "")
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = not ((min is not None and (v < min or (min_open and v == min)))
                  or (max is not None and (v > max or (max_open and v == max))))
    if not ok:
        raise BadArgument(name, value, allowed, fix)
    return float(value)


def check_bool(name: str, value: Any, fix: str = "") -> bool:
    """True or False (not 1, not "yes").

    >>> check_bool("progress", False)
    False
    """
    if not isinstance(value, bool):
        raise BadArgument(name, value, "must be True or False", fix or f"pass {name}=True or {name}=False")
    return value


def check_str(name: str, value: Any, *, nonempty: bool = True, fix: str = "", none_ok: bool = False) -> str | None:
    """A string (non-empty, not only spaces, unless `nonempty=False`).

    >>> check_str("name", "smollm2-135m")
    'smollm2-135m'
    """
    if value is None and none_ok:
        return None
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise BadArgument(name, value, "must be a non-empty string" if nonempty else "must be a string", fix)
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any], fix: str = "") -> Any:
    """One of `choices` (compared with ==; bools never match integers).

    >>> check_choice("padding_side", "left", ["left", "right"])
    'left'
    """
    if not any(value == c and type(value) is type(c) for c in choices):
        raise BadArgument(name, value, "must be one of " + ", ".join(repr(c) for c in choices), fix)
    return value


def check_strings(name: str, value: Any, *, nonempty: bool = True, fix: str = "") -> list[str]:
    """A list (or tuple) of strings, at least one; a single string is refused (it is not a list of strings).

    >>> check_strings("prompts", ["a", "b"])
    ['a', 'b']
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise BadArgument(name, value, "must be a list of strings", fix or f"pass {name}=[...] with one string each")
    if nonempty and not value:
        raise BadArgument(name, value, "must hold at least one string", fix)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise BadArgument(f"{name}[{i}]", v, "must be a string", fix)
    return list(value)


def check_floats(name: str, value: Any, *, min: float | None = None, min_open: bool = False, nonempty: bool = True,
                 fix: str = "") -> list[float]:
    """A list (or tuple) of finite numbers, each > `min` (`min_open`) or >= `min`; a single number is refused.

    >>> check_floats("Cs", (0.1, 1), min=0, min_open=True)
    [0.1, 1.0]
    """
    allowed = "must be a list of finite numbers" + ("" if min is None else f" {'>' if min_open else '>='} {min}")
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range)) or (nonempty and not value):
        raise BadArgument(name, value, allowed + (" (at least one)" if nonempty else ""),
                          fix or f"pass {name}=[...] with one number each")
    for i, v in enumerate(value):
        check_float(f"{name}[{i}]", v, min=min, min_open=min_open, fix=fix)
    return [float(v) for v in value]


def check_ints(name: str, value: Any, *, min: int | None = None, max: int | None = None, nonempty: bool = True,
               fix: str = "") -> list[int]:
    """A list (or tuple) of integers within [min, max]; a single number or a string is refused.

    >>> check_ints("inject_nan_steps", [3, 5], min=1)
    [3, 5]
    """
    allowed = "must be a list of " + _range_text("integers", min, max)
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range)) or (nonempty and not value):
        raise BadArgument(name, value, allowed + (" (at least one)" if nonempty else ""),
                          fix or f"pass {name}=[...] with one integer each")
    for i, v in enumerate(value):
        check_int(f"{name}[{i}]", v, min=min, max=max, fix=fix)
    return [int(v) for v in value]


def check_layers(name: str, value: Any, n_layers: int) -> list[int]:
    """"all", an int, or a non-empty sequence of ints in 0..n_layers -> sorted unique list.

    A string other than "all" is refused (read character by character it would mean other layers).

    >>> check_layers("layers", "all", 2), check_layers("layers", 1, 2)
    ([0, 1, 2], [1])
    """
    allowed = f'must be "all", an integer or a list of integers in 0..{n_layers}'
    if isinstance(value, str):
        if value == "all":
            return list(range(n_layers + 1))
        fix = f"pass {name}=[{value.strip()}] (a list), or \"all\"" if value.strip().isdigit() else \
            f'pass {name}="all" or a list such as [0, {n_layers}]'
        raise BadArgument(name, value, allowed, fix)
    items = [value] if _is_int(value) else value
    if not isinstance(items, (Sequence, range)) or isinstance(items, bytes) or not items \
            or not all(_is_int(x) for x in items):
        raise BadArgument(name, value, allowed + " (at least one)", f'pass {name}="all" or e.g. [0, {n_layers}]')
    bad = sorted({int(x) for x in items if not 0 <= int(x) <= n_layers})
    if bad:
        raise BadArgument(name, value, allowed + f" (0 = embeddings, {n_layers} = after the last block); "
                          f"{bad} are out of range", f"keep layers within 0..{n_layers}")
    return sorted({int(x) for x in items})


def check_path_exists(name: str, value: Any, *, kind: str = "file", fix: str = "") -> Path:
    """An existing file (`kind="file"`) or folder (`kind="folder"`); a too-long or empty name is refused clearly.

    >>> check_path_exists("folder", ".", kind="folder").is_dir()
    True
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise BadArgument(name, value, f"must be the path of an existing {kind}", fix)
    p = Path(value)
    try:
        ok = p.is_file() if kind == "file" else p.is_dir()
    except OSError:  # e.g. "File name too long": a text passed where a path was expected
        ok = False
    if not ok:
        raise BadArgument(name, value, f"must be the path of an existing {kind}; none is there", fix)
    return p


def check_new_path(name: str, value: Any, *, fix: str = "") -> Path:
    """A path where a new FILE will be written: non-empty, not an existing folder, its parent not a file.

    >>> check_new_path("out", "report.html").name
    'report.html'
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise BadArgument(name, value, "must be a file path (non-empty)",
                          fix or f"pass {_set(name, repr('result.html'))}")
    p = Path(value)
    if p.is_dir():
        raise BadArgument(name, value, "is an existing folder; a file path is needed here",
                          fix or f"pass {_set(name, repr(str(p / 'result')))} or another file name")
    if any(parent.is_file() for parent in p.parents):
        raise BadArgument(name, value, "lies under an existing file, which cannot hold files",
                          fix or "choose a path whose parent is a folder")
    return p


def check_out_folder(name: str, value: Any, *, fix: str = "") -> Path:
    """A folder to write into: non-empty path, not an existing file, no parent that is a file.

    `out=""` would write into the working folder: refused.

    >>> check_out_folder("out", "runs/c").name
    'c'
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise BadArgument(name, value, "must be a folder path (non-empty)",
                          fix or f"pass {_set(name, repr('runs/name'))} (a new or resumable folder)")
    p = Path(value)
    if p.exists() and not p.is_dir():
        raise BadArgument(name, value, "is an existing file, not a folder",
                          fix or f"pass {_set(name, 'FOLDER')}, a folder path (new, or one this call wrote before)")
    if any(parent.is_file() for parent in p.parents):
        raise BadArgument(name, value, "lies under an existing file, which cannot hold folders",
                          fix or "choose a path whose parent is a folder")
    return p
