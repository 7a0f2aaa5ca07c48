"""probes.tasks.task.Task: required keys and unique ids checked, views (texts, labels, groups, frame), slicing and
filtering keep the name and settings, and a saved JSONL loads back as the same samples."""

import pytest

from probes import tasks
from probes.tasks.task import REQUIRED, Task


def _samples(n=6):
    return [{"id": f"s{i}", "text": f"question {i // 2}", "label": i % 2, "group": i // 2, "kind": "ab"[i % 2]}
            for i in range(n)]


def test_views_slices_and_filters():
    t = Task("toy", _samples(), {"seed": 3})
    assert len(t) == 6 and list(t) == t.samples and t[2] is t.samples[2]
    assert t.texts == t.prompts == [s["text"] for s in _samples()]
    assert t.labels.tolist() == [0, 1] * 3 and t.groups.tolist() == ["0", "0", "1", "1", "2", "2"]
    part = t[1:3]
    assert isinstance(part, Task) and part.name == "toy" and part.config == {"seed": 3}
    assert part.samples == t.samples[1:3]
    b = t.filter(lambda s: s["kind"] == "b")
    assert [s["id"] for s in b] == ["s1", "s3", "s5"] and b.config is not t.config
    assert t.to_frame().shape == (6, 5) and list(t.to_frame().columns[:4]) == list(REQUIRED)
    copies = t.records()
    copies[0]["text"] = "changed"
    assert t.samples[0]["text"] == "question 0"                   # records() are copies
    assert repr(t) == "Task('toy', 6 samples, 3 groups, labels {0: 3, 1: 3})"


def test_missing_keys_and_repeated_ids_are_refused():
    with pytest.raises(ValueError, match=r"sample 1 lacks \['label'\]"):
        Task("t", [_samples()[0], {"id": "x", "text": "y", "group": 0}])
    with pytest.raises(ValueError, match="sample ids are not unique"):
        Task("t", _samples()[:2] + _samples()[:1])


def test_save_jsonl_round_trips_through_load(tmp_path):
    t = Task("toy", _samples())
    path = t.save_jsonl(tmp_path / "toy.jsonl")
    back = tasks.load(str(path))
    assert back.name == "toy" and [s["id"] for s in back] == [s["id"] for s in t]
    assert back.texts == t.texts and back.labels.tolist() == t.labels.tolist()
    assert back.groups.tolist() == t.groups.tolist() and [s["kind"] for s in back] == [s["kind"] for s in t]
