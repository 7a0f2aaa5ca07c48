"""Tests for codi.data: GSM8k-Aug loading with line-numbered errors, save and split (the arithmetic generator it
re-exports is tested in tests/problems/test_arithmetic.py)."""

import json

import pytest

from codi import data


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
