"""codi.organisms.tasks: per-step truth of the chains, the split by problem, counterfactual pairs, argument errors.

(Named test_organisms_tasks.py: tests/probes/test_tasks.py exists, and pytest imports test files by basename.)
"""

from __future__ import annotations

import pytest

from codi.organisms import tasks


@pytest.mark.parametrize("task", [tasks.pointer_chase(3), tasks.pointer_chase(5, nodes=6, names=9),
                                  tasks.modular_chain(4)])
def test_values_follow_the_chain(task):
    for p in task.make(50, seed=3):
        assert p.values[-1] == int(p.answer) and len(p.values) == task.depth
        assert p.cot.split() == [str(v) for v in p.values]
        rule, v = task.mapping(p), int(p.question.split()[-1] if task.family == "pointer" else p.question.split()[0])
        for s in range(task.depth):
            v = rule[v] if task.family == "pointer" else ((v + rule[s][1]) if rule[s][0] == "+" else
                                                           (v * rule[s][1])) % task.names
            assert v == p.values[s]


def test_split_is_by_problem_and_deterministic():
    t = tasks.pointer_chase(3)
    train = {p.question for p in t.make(3000, seed=0, split="train")}
    test = [p.question for p in t.make(300, seed=1, split="test")]
    assert not train & set(test)
    assert all(tasks.is_held_out(q) for q in test)
    assert [p.question for p in t.make(5, seed=1, split="test")] == test[:5]
    assert 0.07 < sum(tasks.is_held_out(p.question) for p in t.make(2000, seed=4)) / 2000 < 0.13


@pytest.mark.parametrize("step", [1, 2, 3])
def test_pairs_differ_in_the_step_value_and_the_answer(step):
    t = tasks.pointer_chase(3)
    clean, corrupt = t.pairs(40, seed=2, step=step)
    for c, k in zip(clean, corrupt):
        assert t.mapping(c) == t.mapping(k)
        assert c.values[step - 1] != k.values[step - 1] and c.answer != k.answer
        assert str(t.follow(k, c.values[step - 1], step)) == c.answer     # the counterfactual answer


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="hops=0"):
        tasks.pointer_chase(0)
    with pytest.raises(ValueError, match="split='dev'"):
        tasks.pointer_chase(2).make(3, split="dev")
