"""formats.atomic: writes that leave whole files or nothing; a killed swap repaired by the next call."""

from __future__ import annotations

import os

import pytest

import formats
from formats.atomic import _set_aside_name


def test_failed_block_leaves_the_target_as_it_was(tmp_path):
    with formats.staged_folder(tmp_path / "run") as tmp:
        formats.atomic_write_text(tmp / "a.txt", "first")
    with pytest.raises(RuntimeError), formats.staged_folder(tmp_path / "run", replace=True) as tmp:
        formats.atomic_write_text(tmp / "a.txt", "second")
        raise RuntimeError("boom")
    assert (tmp_path / "run" / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_existing_target_without_replace_is_refused_before_writing(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileExistsError, match="run"), formats.staged_folder(tmp_path / "run"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_kill_between_the_two_renames_restores_the_previous_folder(tmp_path):
    final = tmp_path / "run"
    with formats.staged_folder(final) as tmp:
        formats.atomic_write_text(tmp / "a.txt", "first")
    os.replace(final, _set_aside_name(final))  # what a kill after the first rename of a replace leaves
    assert not final.exists()
    with pytest.raises(RuntimeError), formats.staged_folder(final, replace=True):
        raise RuntimeError("the next run fails too")
    assert (final / "a.txt").read_text() == "first"  # restored, not cleaned away
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_kill_after_the_second_rename_drops_the_set_aside_copy(tmp_path):
    final = tmp_path / "run"
    with formats.staged_folder(final) as tmp:
        formats.atomic_write_text(tmp / "a.txt", "new")
    aside = _set_aside_name(final)
    aside.mkdir()
    with formats.staged_folder(final, replace=True) as tmp:
        formats.atomic_write_text(tmp / "a.txt", "newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_user_temporaries_are_never_cleaned(tmp_path):
    (tmp_path / ".notes.tmp").write_text("mine")
    formats.tmp_name(tmp_path / "x").write_text("")
    assert [p.name for p in formats.clean_temporaries(tmp_path)] != []
    assert (tmp_path / ".notes.tmp").read_text() == "mine"
