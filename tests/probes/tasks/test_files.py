"""probes.tasks.files: the user's own JSONL (labels binary or numeric, other keys kept) and a Liars' Bench style CSV
(columns found by name, a chat transcript split into prompt and last answer)."""

import json

import pytest

from probes import tasks
from probes.tasks.files import load_jsonl, load_liars_bench_csv


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


def test_jsonl_labels_keys_and_ids(tmp_path):
    """auto: words and bools are binary, other numbers numeric; label_key/group_key rename; ids from the file's
    stem and line unless given; blank lines skipped."""
    p = tmp_path / "words.jsonl"
    p.write_text('{"text": "a", "y": "deceptive", "q": 7}\n\n{"text": "b", "y": "honest", "q": 7, "id": "mine"}\n')
    t = load_jsonl(p, label_key="y", group_key="q")
    assert t.labels.tolist() == [1, 0] and t.groups.tolist() == ["7", "7"]
    assert [s["id"] for s in t] == ["words-0", "mine"] and "y" not in t.samples[0] and t.config["labels"] == "binary"
    n = tmp_path / "values.jsonl"
    n.write_text("".join(json.dumps({"text": f"t{i}", "label": v, "group": i}) for i, v in enumerate([3, 0.5, 7]))
                 .replace("}{", "}\n{"))
    num = load_jsonl(n)
    assert num.labels.tolist() == [3, 0.5, 7] and num.config["labels"] == "numeric"
    with pytest.raises(ValueError, match="values.jsonl:1: label 3 is not binary"):
        load_jsonl(n, labels="binary")


def test_csv_columns_by_name_or_given(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("statement,is_lie,pair_id,dataset\nSky is red.,yes,p0,x\nGrass is green.,no,p0,x\nA.,1,p1,\n")
    t = load_liars_bench_csv(p)
    assert (t.config["text_col"], t.config["label_col"], t.config["group_col"]) == ("statement", "is_lie", "pair_id")
    assert t.texts == ["Sky is red.", "Grass is green.", "A."] and t.labels.tolist() == [1, 0, 1]
    assert t.groups.tolist() == ["p0", "p0", "p1"] and t.samples[0]["dataset"] == "x" and "dataset" not in t[2]
    own = load_liars_bench_csv(p, text_col="dataset", label_col="is_lie", group_col="statement")
    assert own.texts[:2] == ["x", "x"] and own.groups.tolist() == ["Sky is red.", "Grass is green.", "A."]
    with pytest.raises(KeyError, match="label column 'deceptive' not in the CSV"):
        load_liars_bench_csv(p, label_col="deceptive")
