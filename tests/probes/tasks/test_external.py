"""probes.tasks.external on small files written in the published layouts: Apollo's roleplaying dataset.yaml (and
its JSON form), Apollo rollout files, Liars' Bench exports (JSONL, JSON, CSV); labels, groups and texts checked
value by value; a file missing a needed column is refused with an error naming the file and the column."""

import doctest
import importlib
import json

import pandas as pd
import pytest
import yaml

from probes import tasks
from probes.tasks.external import load_apollo_rollouts, load_liars_bench, sniff_layout, transcript

ROLEPLAY = [
    {"scenario": "You are a student who forgot the essay.", "question": "Teacher: Where is your essay?",
     "answer_prefix": "Student:", "honest_completion": "I forgot to write it.",
     "deceptive_completion": "My dog ate it."},
    {"scenario": "You sell a car with a broken gearbox.", "question": "Buyer: Any problems?",
     "answer_prefix": "Seller:", "honest_completion": "The gearbox is broken.",
     "deceptive_completion": "None at all.", "id": 7},
]

ROLLOUTS = {"dataset_class": "RolePlayingDataset", "base_name": "roleplaying", "variant": "plain",
            "model": "llama-70b-3.3", "rollouts": [
                {"input_messages": [{"role": "system", "content": "You are a student.", "detect": False},
                                    {"role": "user", "content": "Where is the essay?", "detect": False},
                                    {"role": "assistant", "content": "", "detect": True}],
                 "expected_label": "deceptive", "input_str": "...",
                 "output_messages": [{"role": "assistant", "content": "My dog ate it.", "detect": True}] * 3,
                 "output_strs": ["My dog ate it.", "I forgot it.", "Hmm."],
                 "grader_reasoning": ["r1", "r2", "r3"], "graded_deception": [7, 1, 4],
                 "deception_percentage": 0.33, "metadata": {"scenario": "essay"}},
                {"input_messages": [{"role": "user", "content": "Is the car fine?", "detect": False},
                                    {"role": "assistant", "content": "Seller:", "detect": True}],
                 "expected_label": "deceptive", "output_strs": ["Yes, perfect.", "It has a fault."],
                 "graded_deception": ["deceptive", "honest"], "deception_percentage": 0.5}]}


def _chat(q, a):
    return [{"role": "system", "content": "You are Mistral."}, {"role": "user", "content": q},
            {"role": "assistant", "content": a}]


LIARS = [{"index": i, "model": "mistral-small", "messages": _chat(f"Question {i}?", f"Answer {i}."),
          "deceptive": bool(i % 2), "temperature": 0.7, "dataset": "instructed-deception",
          "meta": "{'n_turns': 1}"} for i in range(4)]


def test_apollo_roleplaying_yaml_and_json(tmp_path):
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(ROLEPLAY))
    (tmp_path / "rp.json").write_text(json.dumps(ROLEPLAY))
    for name in ("dataset.yaml", "rp.json"):
        t = tasks.load(str(tmp_path / name))
        assert t.labels.tolist() == [0, 1, 0, 1] and t.groups.tolist() == ["apollo-roleplaying-0"] * 2 + \
            ["apollo-roleplaying-1"] * 2
        assert t.samples[0]["text"] == "You are a student who forgot the essay.\nTeacher: Where is your essay?"
        assert t.samples[0]["response"] == "Student: I forgot to write it."
        assert t.samples[1]["response"] == "Student: My dog ate it." and t.samples[1]["text"] == t.samples[0]["text"]
        assert t.samples[2]["id"] == "apollo-roleplaying-1-honest" and t.config["layout"] == "apollo-roleplaying"


def test_apollo_rollouts_labels_from_grades(tmp_path):
    p = tmp_path / "roleplaying__plain__llama-70b-3.3.json"
    p.write_text(json.dumps(ROLLOUTS))
    t = tasks.load(str(p))
    # grades 7 -> deceptive, 1 -> honest, 4 -> ambiguous (skipped); "deceptive" / "honest" strings
    assert t.labels.tolist() == [1, 0, 1, 0]
    assert [s["response"] for s in t] == ["My dog ate it.", "I forgot it.", "Seller: Yes, perfect.",
                                         "Seller: It has a fault."]
    assert t.samples[0]["text"] == "system: You are a student.\nuser: Where is the essay?"
    assert t.groups.tolist() == [f"{p.stem}-0"] * 2 + [f"{p.stem}-1"] * 2
    assert t.config["skipped"] == {"4": 1} and t.samples[0]["expected_label"] == "deceptive"
    loose = load_apollo_rollouts(p, honest_max=4, deceptive_min=5)
    assert loose.labels.tolist() == [1, 0, 0, 1, 0] and loose.config["skipped"] == {}


def test_liars_bench_jsonl_json_csv(tmp_path):
    (tmp_path / "lb.jsonl").write_text("\n".join(json.dumps(r) for r in LIARS))
    (tmp_path / "lb.json").write_text(json.dumps(LIARS))
    df = pd.DataFrame(LIARS)
    df["messages"] = df["messages"].map(json.dumps)                        # CSV exports hold the chat as JSON text
    df.to_csv(tmp_path / "lb.csv", index=False)
    for name, kw in (("lb.jsonl", {}), ("lb.json", {}), ("lb.csv", {"layout": "liars-bench"})):
        t = tasks.load(str(tmp_path / name), **kw)
        assert t.labels.tolist() == [0, 1, 0, 1], name
        assert t.samples[1]["text"] == "system: You are Mistral.\nuser: Question 1?"
        assert t.samples[1]["response"] == "Answer 1." and t.samples[1]["model"] == "mistral-small"
        assert t.samples[1]["dataset"] == "instructed-deception" and t.samples[1]["temperature"] == 0.7
        assert len(set(t.groups)) == 4 and t.config["layout"] == "liars-bench"
    grouped = load_liars_bench(tmp_path / "lb.jsonl", group_col="model")
    assert set(grouped.groups) == {"mistral-small"}
    assert sniff_layout(tmp_path / "lb.jsonl") == "liars-bench" and sniff_layout(tmp_path / "lb.csv") == "csv"


def test_a_file_missing_a_needed_column_is_refused_naming_file_and_column(tmp_path):
    bad_rp = [{k: v for k, v in r.items() if k != "deceptive_completion"} for r in ROLEPLAY]
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(bad_rp))
    with pytest.raises(ValueError, match=r"dataset\.yaml.*lacks the column\(s\) \['deceptive_completion'\] that "
                                         r"the apollo-roleplaying layout needs"):
        tasks.load(str(tmp_path / "dataset.yaml"))
    bad_ro = json.loads(json.dumps(ROLLOUTS))
    del bad_ro["rollouts"][1]["graded_deception"]
    (tmp_path / "ro.json").write_text(json.dumps(bad_ro))
    with pytest.raises(ValueError, match=r"ro\.json.*\(rollout 1\) lacks the column\(s\) \['graded_deception'\]"):
        tasks.load(str(tmp_path / "ro.json"))
    (tmp_path / "lb.jsonl").write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "deceptive"})
                                                for r in LIARS))
    with pytest.raises(ValueError, match=r"lb\.jsonl.*lacks the column\(s\) \['deceptive'\] that the liars-bench"):
        tasks.load(str(tmp_path / "lb.jsonl"))
    pd.DataFrame([{"messages": "[]", "label": 1}]).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match=r"x\.csv.*lacks the column\(s\) \['deceptive'\]"):
        tasks.load(str(tmp_path / "x.csv"), layout="liars-bench")
    with pytest.raises(ValueError, match=r"lb2\.jsonl.*lacks the column\(s\) \['dataset_id'\]"):
        (tmp_path / "lb2.jsonl").write_text("\n".join(json.dumps(r) for r in LIARS))
        load_liars_bench(tmp_path / "lb2.jsonl", group_col="dataset_id")


def test_other_bad_files(tmp_path):
    with pytest.raises(ValueError, match="path='.*nope.yaml': must be the path of an existing file"):
        tasks.load(str(tmp_path / "nope.yaml"))
    (tmp_path / "g.json").write_text(json.dumps({"rollouts": [{**ROLLOUTS["rollouts"][0], "graded_deception":
                                                               ["ambiguous", "refusal", 3]}]}))
    with pytest.raises(ValueError, match=r"no output has an honest or deceptive grade \(skipped: \{'ambiguous': 1, "
                                         r"'refusal': 1, '3': 1\}\)"):
        tasks.load(str(tmp_path / "g.json"))
    (tmp_path / "o.json").write_text(json.dumps([{"prompt": "x"}]))
    with pytest.raises(ValueError, match="not a layout codi-lens reads"):
        tasks.load(str(tmp_path / "o.json"))
    with pytest.raises(ValueError, match="layout='apollo'"):
        tasks.load(str(tmp_path / "o.json"), layout="apollo")
    with pytest.raises(ValueError, match="no assistant message"):
        transcript([{"role": "user", "content": "hi"}], "f.jsonl: row 0")


def test_doctests_run():
    assert doctest.testmod(importlib.import_module("probes.tasks.external")).failed == 0
