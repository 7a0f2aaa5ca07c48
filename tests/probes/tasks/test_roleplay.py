"""probes.tasks.roleplay: varied scenarios (not one template with names swapped), pairs sharing a group and a
prompt, answers fixed by the template, deterministic in the seed, bad n refused."""

import doctest
import importlib

import numpy as np
import pytest

from probes import tasks
from probes.tasks.roleplay import SCENARIOS, instances, roleplaying


def test_pairs_share_group_and_prompt_and_differ_in_the_answer():
    t = tasks.load("roleplaying", n=120, seed=0)
    assert len(t) == 120 and (t.labels == np.tile([0, 1], 60)).all()
    assert (t.groups[::2] == t.groups[1::2]).all() and len(set(t.groups)) == 60
    for h, d in zip(t.samples[::2], t.samples[1::2]):
        assert h["text"] == d["text"] == f"{h['scenario']}\n{h['question']}"
        assert h["response"] == f"{h['answer_prefix']} {h['honest_completion']}"
        assert d["response"] == f"{d['answer_prefix']} {d['deceptive_completion']}"
        assert h["honest_completion"] != h["deceptive_completion"] and h["character"] in h["scenario"]
        assert "{" not in h["text"] + h["response"] + d["response"]             # every slot filled


def test_scenarios_are_varied_not_names_swapped():
    """Distinct situations, questions and answers per template: no two templates share a question or an answer,
    and 60 instances cover every template."""
    assert len(SCENARIOS) >= 30 and len({s.key for s in SCENARIOS}) == len(SCENARIOS)
    for field in ("scenario", "question", "honest", "deceptive"):
        assert len({getattr(s, field) for s in SCENARIOS}) == len(SCENARIOS), field
    t = roleplaying(n=2 * len(SCENARIOS), seed=3)
    assert {s["template"] for s in t} == {s.key for s in SCENARIOS}
    assert len({s["answer_prefix"] for s in t}) >= 15                        # many different speakers


def test_deterministic_and_seed_dependent():
    a, b, c = roleplaying(n=40, seed=1), roleplaying(n=40, seed=1), roleplaying(n=40, seed=2)
    assert a.samples == b.samples and a.samples != c.samples
    assert len({s["id"] for s in roleplaying(n=600, seed=0)}) == 600           # unique instances, even many


def test_bad_n_is_refused_before_any_work():
    with pytest.raises(ValueError, match=r"n=3: must be even"):
        roleplaying(n=3)
    total = sum(len(instances(s)) for s in SCENARIOS)
    with pytest.raises(ValueError, match=rf"must be at most {2 * total}"):
        roleplaying(n=2 * total + 2)
    with pytest.raises(TypeError, match="n=2.5"):
        roleplaying(n=2.5)


def test_doctests_run():
    assert doctest.testmod(importlib.import_module("probes.tasks.roleplay")).failed == 0
