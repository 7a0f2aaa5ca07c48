"""probes.tasks.facts (named test_tasks_facts.py: tests/basemodels/test_facts.py has the basename test_facts.py):
true statements said under an honest and a dishonest persona, groups per fact."""

import pytest

from probes import tasks
from probes.tasks.facts import CAPITALS, DISHONEST_PERSONA, ELEMENTS, HONEST_PERSONA, facts, instructed_facts


def test_instructed_facts():
    t = tasks.load("instructed-facts", n=200, seed=1)
    df = t.to_frame()
    assert set(df.fact_type) == {"capital", "element", "larger_than"}
    assert "The capital of France is Paris." in set(df.statement) or len(df) == 200
    assert (df.groupby("group").label.agg(sorted).map(tuple) == (0, 1)).all()


def test_facts_are_the_tables_and_true():
    capitals = facts("capital")
    assert [f["statement"] for f in capitals] == [f"The capital of {c} is {cap}." for c, cap in CAPITALS]
    elements = facts("element")
    assert len(elements) == 2 * len(ELEMENTS)
    assert {"The chemical symbol of gold is Au.", "The atomic number of gold is 79."} <= {f["statement"]
                                                                                          for f in elements}
    larger = facts("larger_than")
    assert len(larger) == 49 * 48 // 2                           # pairs a > b among 51..99
    assert larger[0]["statement"] == "Fifty-two is larger than fifty-one."
    assert "Ninety-nine is larger than ninety-eight." in {f["statement"] for f in larger}
    assert all(int(f["subject"]) > int(f["fact_id"].split("-")[2]) for f in larger)
    with pytest.raises(KeyError, match="unknown fact kind 'rivers'"):
        facts("rivers")


def test_pairs_share_the_statement_and_differ_in_the_persona():
    t = instructed_facts(n=10, seed=0, facts_from=("capital",))
    for h, d in zip(t.samples[::2], t.samples[1::2]):
        assert h["group"] == d["group"] and h["statement"] == d["statement"] == h["response"]
        assert (h["label"], h["persona"], d["label"], d["persona"]) == (0, HONEST_PERSONA, 1, DISHONEST_PERSONA)
        assert h["text"] == f"{HONEST_PERSONA}\n{h['statement']}"
    assert set(t.to_frame().fact_type) == {"capital"}
    with pytest.raises(ValueError, match="only 46 facts"):
        instructed_facts(n=2 * 46 + 2, facts_from=("capital",))
    with pytest.raises(ValueError, match="even n"):
        instructed_facts(n=5)
