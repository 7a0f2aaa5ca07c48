"""Fixtures shared by every test package: `refused`, the check of the bad-input suites.

A bad input must raise the expected error type, with a message that names the argument (or flag), before anything
is written: the test runs in an empty working folder (`tmp_path`, also the current directory) whose whole tree
(names, sizes, sha256) must be the same afterwards.
"""

from __future__ import annotations

import functools
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


# ------------------------------------------------------------------------------------------------ slow marker
# Every test that loads real weights (a registry name backed by a GGUF download: smollm2 / gemma3 / qwen, or a CODI
# checkpoint on one of them) must carry @pytest.mark.slow, so `-m "not slow"` is a fast run without them. The
# registry's path resolver is watched for the whole session: loading a real-weight name while an unmarked test (or
# its fixtures) runs fails that test with the reason. (Tests that load weights in a subprocess, like the demo,
# carry the marker by hand.)
_RUNNING: dict[str, pytest.Item] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    _RUNNING["item"] = item  # before the item's fixtures are set up (conftest hooks run before pytest's own)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _RUNNING.pop("item", None)


@pytest.fixture(scope="session", autouse=True)
def _real_weights_only_in_slow_tests():
    from basemodels import registry

    original = registry.resolve_model_path

    @functools.wraps(original)  # `__wrapped__` keeps the registry's own function reachable (tests/interp/test_models)
    def watched(name: str) -> Path:
        item = _RUNNING.get("item")
        if isinstance(registry.MODELS.get(name), registry.GGUFSpec) and item is not None \
                and item.get_closest_marker("slow") is None:
            raise AssertionError(f"{item.nodeid} loads the real weights of {name!r} but is not marked "
                                 f"@pytest.mark.slow; mark it (or its module: pytestmark = pytest.mark.slow).")
        return original(name)

    registry.resolve_model_path = watched
    yield
    registry.resolve_model_path = original


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses `refused` checks one bad input: mark it `bad_input` (count: pytest -m bad_input --co -q).
    The validators' own tests (tests/argcheck) are not counted: they check argcheck, not a call of the project."""
    for item in items:
        if "refused" in getattr(item, "fixturenames", ()) and "/argcheck/" not in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.bad_input)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """conftest.py files are plugins, not modules to doctest: `--doctest-modules` (pyproject.toml) would import every
    one of them under the same name `conftest` and fail on the second."""
    return True if collection_path.name == "conftest.py" else None
