"""Fixtures shared by the interp tests (inputs in helpers.py; pytest puts this folder on sys.path, so the test files
of tests/interp/store and tests/interp/interventions import `helpers` too)."""

from __future__ import annotations

import pytest


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder (also the cwd, so default output paths would land here too) holding one user file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a user's file\n")
    return tmp_path
