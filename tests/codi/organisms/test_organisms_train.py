"""codi.organisms.train: the accuracy table of every shipped organism reproduces from its shipped weights.

(Named test_organisms_train.py: tests/codi/test_train.py tests codi.train, and pytest imports test files by basename.)
"""

from __future__ import annotations

import json

import pytest

import codi
from codi.organisms import tasks
from codi.organisms.train import OrganismSpec, accuracy_markdown, accuracy_table

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


@pytest.mark.parametrize("name", ["pointer2", "pointer3", "pointer4"])
def test_shipped_accuracy_table_reproduces(name):
    if name not in codi.organisms.available():
        pytest.fail(f"organism {name} is not shipped")
    meta = json.loads((codi.organisms.folder(name) / "organism.json").read_text())
    cm, _ = codi.organisms.load(name)
    table = accuracy_table(cm, codi.organisms.task_of(name), n=meta["accuracy"]["n"])
    for key, want in meta["accuracy"].items():
        got = table[key]
        if isinstance(want, list):
            assert got == pytest.approx(want, abs=0.005), key
        else:
            assert got == pytest.approx(want, abs=0.005), key


def test_accuracy_markdown_lists_every_mode_and_prefix():
    table = dict(n=500, chance=0.125, direct=0.1, written=1.0, codi=0.95, codi_zero=0.07, codi_mean=0.1,
                 codi_random=0.11, codi_swap=0.05, first_j=[0.0, 0.2, 0.95])
    lines = accuracy_markdown("pointer2", table, dict(base_s=61.4, codi_s=300.2)).splitlines()
    assert lines[0] == "# pointer2: held-out accuracy"
    assert "500 held-out problems" in lines[2] and "chance 0.125" in lines[2] and "base 61 s, CODI 300 s" in lines[2]
    rows = [line for line in lines if line.startswith("| ") and "accuracy" not in line]
    assert len(rows) == 7 + 3 and rows[2] == "| CODI (continuous thoughts) | 0.950 |"
    assert rows[-1] == "| CODI, only the first 2 thought(s) | 0.950 |"


def test_spec_is_checked_when_made():
    assert OrganismSpec(family="modular", depth=2).task() == tasks.modular_chain(2)
    for kw, named in ((dict(family="maze"), "family='maze'"), (dict(depth=0), "depth=0"),
                      (dict(base="small"), "base='small'"), (dict(codi_lr=0), "codi_lr=0")):
        with pytest.raises(ValueError, match=named):
            OrganismSpec(**kw)
