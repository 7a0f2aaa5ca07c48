"""probes.tasks.arith: deception under instruction (honest/lying pairs, the instruction before the question or only
in the response) and intermediate values (the value of one reasoning step as the label)."""

import numpy as np
import pytest

from probes import tasks
from probes.tasks.arith import HONEST, LYING, deception_arith
from problems.arithmetic import arithmetic


def test_deception_arith_pairs_and_placement():
    t = tasks.load("deception-arith", n=40, seed=0)
    assert len(t) == 40 and (t.labels == np.tile([0, 1], 20)).all()
    assert (t.groups[::2] == t.groups[1::2]).all() and len(set(t.groups)) == 20
    for h, lie in zip(t.samples[::2], t.samples[1::2]):
        assert h["answer"] == h["correct_answer"] != lie["answer"] == lie["deceptive_answer"]
        assert h["text"].endswith(h["question"]) and h["instruction"] != lie["instruction"]
        assert lie["response"] == f"The answer is: {lie['deceptive_answer']}"
    c = tasks.load("deception-arith", n=40, seed=0, placement="response")
    assert all(a["text"] == b["text"] == a["question"] for a, b in zip(c.samples[::2], c.samples[1::2]))
    assert c.samples[1]["response"].startswith(c.samples[1]["instruction"])
    assert tasks.load("deception-arith", n=40, seed=0).samples == t.samples           # deterministic
    with pytest.raises(ValueError, match="even n"):
        tasks.load("deception-arith", n=3)


def test_intermediate_values():
    iv = tasks.load("intermediate-values", n=30, seed=0, steps=3, step=1)
    assert [s["label"] for s in iv] == [s["value_1"] for s in iv]
    assert all(s["value_2"] == int(s["answer"]) for s in iv)


def test_deception_arith_is_built_on_the_problem_generator():
    """The questions and correct answers are problems.arithmetic's, in order; the instruction pair (honest, lying)
    is one row of the HONEST / LYING tables; the lie is a wrong non-negative number."""
    t = deception_arith(n=20, seed=4)
    problems = arithmetic(10, steps=(2, 3), seed=4)
    for p, h, lie in zip(problems, t.samples[::2], t.samples[1::2]):
        assert h["question"] == lie["question"] == p.question and h["group"] == lie["group"] == p.id
        assert h["correct_answer"] == lie["correct_answer"] == str(int(p.answer)) == h["answer"]
        assert HONEST.index(h["instruction"]) == LYING.index(lie["instruction"])
        assert int(lie["answer"]) != int(p.answer) and int(lie["answer"]) >= 0
        assert [h[f"value_{j}"] for j in range(p.steps)] == [int(v) for v in p.values]
    with pytest.raises(ValueError, match="placement='middle'"):
        deception_arith(n=4, placement="middle")


def test_intermediate_values_binary_columns_and_short_problems():
    """value_j_even / value_j_large recomputed from the values (large: above the task's median of that step); -1
    where a problem has no step j; asking for a step some problems lack is refused."""
    iv = tasks.load("intermediate-values", n=40, seed=2, steps=(2, 3), step=0)
    for j in range(3):
        vals = sorted(s[f"value_{j}"] for s in iv if s[f"value_{j}"] >= 0)
        median = vals[len(vals) // 2]
        for s in iv:
            v = s[f"value_{j}"]
            assert s[f"value_{j}_even"] == (int(v % 2 == 0) if v >= 0 else -1)
            assert s[f"value_{j}_large"] == (int(v > median) if v >= 0 else -1)
    assert any(s["value_2"] == -1 for s in iv) and len(set(iv.groups)) == 40
    with pytest.raises(ValueError, match="step=2 but some problems have only 2 steps"):
        tasks.load("intermediate-values", n=40, seed=2, steps=(2, 3), step=2)
