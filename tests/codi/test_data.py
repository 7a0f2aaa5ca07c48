"""Tests for codi.data: the arithmetic generator, GSM8k-Aug loading with line-numbered errors, save and split."""

import json
import re

import pytest

from codi import data

STEP = re.compile(r"<<(\d+)([-+*/])(\d+)=(\d+)>>")


def test_arithmetic_values_match_cot_and_answer():
    probs = data.arithmetic(500, steps=(2, 3), seed=0)
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
    a = data.arithmetic(200, seed=3)
    b = data.arithmetic(200, seed=3)
    c = data.arithmetic(200, seed=4)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert len({p.id for p in a}) == 200
    assert len({p.question for p in a}) == 200
    ops = {op for p in a for _, op, _, _ in STEP.findall(p.cot)}
    assert ops == {"+", "-", "*", "/"}
    assert len({p.question.split()[0] for p in a}) >= 10  # names / scenario openings vary
    assert {p.steps for p in data.arithmetic(20, steps=2, seed=0)} == {2}


def test_arithmetic_bad_steps():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        data.arithmetic(5, steps=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        data.arithmetic(5, steps=(3, 2))


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_save_load_roundtrip(tmp_path, suffix):
    probs = data.arithmetic(30, seed=1)
    path = data.save(probs, tmp_path / f"d{suffix}")
    back = data.load(path)
    assert [p.to_dict() for p in back] == [p.to_dict() for p in probs]


def test_load_plain_gsm8k_aug_records(tmp_path):
    recs = [{"question": "Q1?", "cot": "<<16-3-4=9>> <<9*2=18>>", "answer": "18"},
            {"question": "Q2?", "cot": "<<600*30/100=180>>", "answer": "1,180"}]
    path = tmp_path / "aug.json"
    path.write_text(json.dumps(recs, indent=2))
    probs = data.load(path)
    assert probs[0].values == [9, 18] and probs[0].steps == 2 and probs[0].answer == "18"
    assert probs[1].answer == "1180" and probs[1].values == [180]
    assert probs[0].id == "aug-000000"


def test_load_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"question": "Q?", "cot": "<<1+1=2>>", "answer": "2"})
    path.write_text(good + "\n" + good + "\n" + json.dumps({"question": "Q?", "answer": "2"}) + "\n")
    with pytest.raises(ValueError, match=r"line 3: missing field\(s\) \['cot'\]"):
        data.load(path)
    path.write_text(good + "\n\n" + json.dumps({"question": "Q?", "cot": "x", "answer": "eighteen"}) + "\n")
    with pytest.raises(ValueError, match=r"line 3: answer 'eighteen' is not a number"):
        data.load(path)
    path.write_text(good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"line 2: invalid JSON"):
        data.load(path)
    arr = tmp_path / "bad.json"
    arr.write_text('[\n  {"question": "Q?", "cot": "<<1+1=2>>", "answer": "2"},\n  {"question": "Q?", "cot": "c"}\n]')
    with pytest.raises(ValueError, match=r"line 3: missing field\(s\) \['answer'\]"):
        data.load(arr)
    with pytest.raises(FileNotFoundError, match="no such data file"):
        data.load(tmp_path / "nope.jsonl")


def test_split_deterministic_disjoint():
    probs = data.arithmetic(100, seed=0)
    tr, te = data.split(probs, test_frac=0.2, seed=0)
    tr2, te2 = data.split(probs, test_frac=0.2, seed=0)
    assert (len(tr), len(te)) == (80, 20)
    assert [p.id for p in te] == [p.id for p in te2]
    assert not {p.id for p in tr} & {p.id for p in te}
    with pytest.raises(ValueError, match="test_frac=1.0: must be a finite number > 0 and < 1"):
        data.split(probs, test_frac=1.0)
