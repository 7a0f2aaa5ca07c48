"""Fixtures shared by every test package: `refused`, the check of the bad-input suites.

A bad input must raise the expected error type, with a message that names the argument (or flag), before anything
is written: the test runs in an empty working folder (`tmp_path`, also the current directory) whose whole tree
(names, sizes, sha256) must be the same afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest


def tree(folder: Path) -> dict[str, str]:
    """Every path under `folder` -> "dir" or the file's sha256."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def refused(tmp_path, monkeypatch) -> Callable[..., str]:
    """`refused(call, error, *names)`: `call()` raises `error` whose message contains every one of `names`, and
    the working folder `tmp_path` (prepared before the call) is unchanged. Returns the message."""
    monkeypatch.chdir(tmp_path)

    def check(call: Callable[[], object], error: type[BaseException], *names: str) -> str:
        before = tree(tmp_path)
        with pytest.raises(error) as info:
            call()
        msg = str(info.value)
        for name in names:
            assert name in msg, f"the message does not name {name!r}: {msg}"
        assert tree(tmp_path) == before, f"the file system changed: {msg}"
        return msg

    return check


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, str]]:
    """`snapshot(folder)`: every path under `folder` -> "dir" or its sha256 (compare before / after a call)."""
    return tree
