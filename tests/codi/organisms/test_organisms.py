"""codi.organisms (the package's own calls): the shipped organisms are listed, small and loadable; their names and
pairs' steps are checked. The tasks, bases, recipe and training of organisms have their own files here."""

from __future__ import annotations

import json

import pytest

import codi

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


def test_bad_organism_arguments_name_the_fix():
    with pytest.raises(ValueError, match="step=4"):
        codi.organisms.pairs("pointer3", 2, step=4)
    with pytest.raises(ValueError, match="name='nope': must be one of 'pointer2'"):
        codi.organisms.load("nope")


def test_shipped_organisms_are_listed_small_and_loadable():
    names = codi.organisms.available()
    assert {"pointer3", "pointer4"} <= set(names) and len(names) >= 3
    for name in names:
        folder = codi.organisms.folder(name)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        assert size < 10 * 2**20, (name, size)
        meta = json.loads((folder / "organism.json").read_text())
        assert meta["task"]["depth"] == codi.organisms.task_of(name).depth
        cm, make = codi.organisms.load(name)
        depth = meta["task"]["depth"]
        assert cm.config.num_latents == (depth if meta["spec"]["base"].get("all_steps") else depth - 1)
        assert all(p.id and p.values for p in make(3, seed=0))


def test_demo_organism_thinks_in_its_latents():
    """The issue's bar for the demo organism (pointer3), read from the shipped table (reproduced in
    test_organisms_train.py)."""
    acc = json.loads((codi.organisms.folder("pointer3") / "organism.json").read_text())["accuracy"]
    assert acc["n"] >= 500
    assert acc["direct"] <= 2 * acc["chance"] and acc["codi_zero"] <= 2 * acc["chance"]
    assert acc["written"] >= 0.95 and acc["codi"] >= 0.90


def test_problems_and_pairs_come_from_the_organisms_own_task():
    task = codi.organisms.task_of("pointer3")
    assert (task.family, task.depth) == ("pointer", 3)
    clean, corrupt = codi.organisms.pairs("pointer3", 5, seed=1, step=2)
    ref_clean, ref_corrupt = task.pairs(5, seed=1, step=2)
    assert [p.to_dict() for p in clean] == [p.to_dict() for p in ref_clean]
    assert [p.to_dict() for p in corrupt] == [p.to_dict() for p in ref_corrupt]
    _, make = codi.organisms.load("pointer3")
    assert [p.to_dict() for p in make(4, seed=2)] == [p.to_dict() for p in task.make(4, seed=2, split="test")]
