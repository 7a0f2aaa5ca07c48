"""problems.arithmetic: every step of a generated problem is right, and generation is deterministic and varied."""

import re

import pytest

from problems import Problem, arithmetic

STEP = re.compile(r"<<(\d+)([-+*/])(\d+)=(\d+)>>")


def test_arithmetic_values_match_cot_and_answer():
    probs = arithmetic(500, steps=(2, 3), seed=0)
    assert len(probs) == 500
    assert {p.steps for p in probs} == {2, 3}
    for p in probs:
        steps = STEP.findall(p.cot)
        assert len(steps) == p.steps == len(p.values)
        prev = None
        for (a, op, b, r), v in zip(steps, p.values):
            a, b, r = int(a), int(b), int(r)
            assert r == v and 0 <= r <= 999
            assert r == {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
            if op == "/":
                assert a % b == 0
            if prev is not None:
                assert a == prev  # each step continues from the previous result
            prev = r
        assert p.values[-1] == int(p.answer)
        assert 1 <= len(p.answer) <= 3
        assert p.question.endswith("?")


def test_arithmetic_deterministic_unique_and_varied():
    a = arithmetic(200, seed=3)
    b = arithmetic(200, seed=3)
    c = arithmetic(200, seed=4)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert len({p.id for p in a}) == 200
    assert len({p.question for p in a}) == 200
    ops = {op for p in a for _, op, _, _ in STEP.findall(p.cot)}
    assert ops == {"+", "-", "*", "/"}
    assert len({p.question.split()[0] for p in a}) >= 10  # names / scenario openings vary
    assert {p.steps for p in arithmetic(20, steps=2, seed=0)} == {2}


def test_arithmetic_bad_steps():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        arithmetic(5, steps=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        arithmetic(5, steps=(3, 2))


def test_a_problem_round_trips_through_its_dict_and_codi_data_reexports_the_generator():
    import codi.data

    p = arithmetic(1, steps=3, seed=5)[0]
    assert Problem(**p.to_dict()) == p
    assert codi.data.arithmetic is arithmetic and codi.data.Problem is Problem
    assert [q.to_dict() for q in codi.data.arithmetic(20, seed=5)] == [q.to_dict() for q in arithmetic(20, seed=5)]
