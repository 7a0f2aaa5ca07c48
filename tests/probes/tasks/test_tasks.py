"""probes.tasks (the package's `load` and `names`): built-in tasks by name, files by suffix or `layout=`, unknown
names refused with the built-in ones listed."""

import json

import pytest

from probes import tasks


def test_unknown_task_is_refused_naming_the_built_in_ones():
    with pytest.raises(KeyError, match="unknown task"):
        tasks.load("truthfulqa")


def test_names_are_the_registry_and_each_loads_deterministically():
    assert tasks.names() == ["deception-arith", "instructed-facts", "intermediate-values", "roleplaying"]
    for name in tasks.names():
        a, b = tasks.load(name, n=8, seed=3), tasks.load(name, n=8, seed=3)
        assert a.name == name and len(a) == 8 and a.samples == b.samples
        assert a.config["n"] == 8 and a.config["seed"] == 3


def test_files_go_to_the_file_loaders_by_suffix_or_layout(tmp_path):
    """A .jsonl with text/label/group is the user's own layout; with `layout=` the file is read strictly in that
    layout (the same file lacks Liars' Bench's columns and is refused)."""
    from probes.tasks.files import load_jsonl

    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2, "group": f"g{i // 2}"}) for i in range(4)))
    assert tasks.load(str(p)).samples == load_jsonl(p).samples
    assert tasks.load(str(p), n=1, seed=5).samples == load_jsonl(p).samples          # n and seed unused for files
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['messages', 'deceptive'\]"):
        tasks.load(str(p), layout="liars-bench")
