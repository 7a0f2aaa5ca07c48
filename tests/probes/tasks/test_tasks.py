import json

import numpy as np
import pytest

from probes import tasks


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


def test_instructed_facts_and_intermediate_values():
    t = tasks.load("instructed-facts", n=200, seed=1)
    df = t.to_frame()
    assert set(df.fact_type) == {"capital", "element", "larger_than"}
    assert "The capital of France is Paris." in set(df.statement) or len(df) == 200
    assert (df.groupby("group").label.agg(sorted).map(tuple) == (0, 1)).all()
    iv = tasks.load("intermediate-values", n=30, seed=0, steps=3, step=1)
    assert [s["label"] for s in iv] == [s["value_1"] for s in iv]
    assert all(s["value_2"] == int(s["answer"]) for s in iv)
    with pytest.raises(KeyError, match="unknown task"):
        tasks.load("truthfulqa")


def test_file_loaders(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2, "group": f"g{i // 2}", "k": i})
                           for i in range(6)))
    t = tasks.load(str(p))
    assert t.labels.tolist() == [0, 1] * 3 and t.samples[5]["k"] == 5
    csv = tmp_path / "liars.csv"
    msgs = json.dumps([{"role": "user", "content": "Is it true?"}, {"role": "assistant", "content": "Yes."}])
    csv.write_text('messages,deceptive,index,model\n' + "\n".join(
        f'"{msgs.replace(chr(34), chr(34) * 2)}",{"True" if i % 2 else "False"},{i // 2},m' for i in range(4)))
    lb = tasks.load(str(csv))
    assert lb.labels.tolist() == [0, 1, 0, 1] and lb.groups.tolist() == ["0", "0", "1", "1"]
    assert lb.samples[0]["text"] == "user: Is it true?\nassistant: Yes." and lb.samples[0]["response"] == "Yes."
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "label": 1}\n')
    with pytest.raises(ValueError, match="missing key 'group'"):
        tasks.load(str(tmp_path / "bad.jsonl"))
