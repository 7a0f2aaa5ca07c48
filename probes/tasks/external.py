r"""Loaders for the deception datasets others publish, in their own column layouts, so a user who has the files runs
the same protocol as on the generated tasks.

Layouts (field names as the publishers write them):
- Apollo Research `deception-detection`, roleplaying (`data/roleplaying/dataset.yaml`): a list of records with
  `scenario`, `question`, `answer_prefix`, `honest_completion`, `deceptive_completion`; each record gives an
  honest (label 0) and a deceptive (label 1) sample sharing one group.
- Apollo rollouts (`data/rollouts/*.json`): `{"rollouts": [{"input_messages": [{"role", "content", "detect"}, ...],
  "output_strs": [...], "graded_deception": [...], ...}]}`; one sample per output, labelled from its grade: "honest"
  / "deceptive", or a 1-7 score (<= 2 honest, >= 6 deceptive, as Apollo's roleplaying grader); other grades
  ("ambiguous", "refusal", "unknown", 3-5) are left out and counted in `task.config["skipped"]`.
- Liars' Bench (Cadenza Labs; JSONL / JSON / CSV / parquet exports): one transcript per row, `messages` (a list of
  `{"role", "content"}`, or that list as a JSON string) and `deceptive` (true/false), plus `model`, `dataset`,
  `temperature`, `meta`, ... which are kept as columns.

Transcripts become `text` = every message before the last assistant message as "role: content" lines, and
`response` = that last assistant message (what `interp.cache` teacher forces after the prompt). A file without a
column the layout needs is refused with an error naming the file and the column.

    >>> import json, tempfile, pathlib
    >>> from probes import tasks
    >>> chat = [{"role": "user", "content": "Did you take it?"}, {"role": "assistant", "content": "No."}]
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "liars_bench_instructed-deception.jsonl"
    >>> _ = p.write_text("\n".join(json.dumps({"messages": chat, "deceptive": d, "model": "m"}) for d in (True, False)))
    >>> t = tasks.load(str(p))                                   # layout sniffed from the first record: liars-bench
    >>> t.labels.tolist(), t.samples[0]["text"], t.samples[0]["response"], t.config["layout"]
    ([1, 0], 'user: Did you take it?', 'No.', 'liars-bench')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

import argcheck
from argcheck.errors import show
from probes.tasks.task import Task

__all__ = ["LAYOUTS", "ROLEPLAYING_KEYS", "ROLLOUT_KEYS", "LIARS_BENCH_KEYS", "load_apollo_roleplaying",
           "load_apollo_rollouts", "load_liars_bench", "sniff_layout", "load_file", "transcript"]

ROLEPLAYING_KEYS = ("scenario", "question", "answer_prefix", "honest_completion", "deceptive_completion")
ROLLOUT_KEYS = ("input_messages", "output_strs", "graded_deception")
LIARS_BENCH_KEYS = ("messages", "deceptive")
LAYOUTS = ("jsonl", "csv", "apollo-roleplaying", "apollo-rollouts", "liars-bench")
HONEST_GRADES, DECEPTIVE_GRADES = {"honest"}, {"deceptive"}


def _require(path: Path, have, needed: tuple[str, ...], layout: str, where: str = "") -> None:
    missing = [k for k in needed if k not in have]
    if missing:
        raise argcheck.BadArgument(
            "path", str(path), f"the file{where} lacks the column(s) {missing} that the {layout} layout needs "
            f"({list(needed)}); it has {sorted(map(str, have))}",
            f"pass a file in the {layout} layout, or load it with another layout", shown=repr(str(path)))


def _read_structured(path: Path) -> Any:
    """The parsed JSON / YAML content of a file (errors name the file and the line)."""
    argcheck.check_path_exists("path", str(path))
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None


def _records(data: Any, path: Path, layout: str) -> list[dict]:
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{path}: the {layout} layout is a non-empty list of records (mappings); got "
                         f"{type(data).__name__}")
    return data


def transcript(messages: Any, where: str = "") -> tuple[str, str]:
    """A chat (list of {"role", "content"}, or that list as JSON text) -> (prompt text, last assistant message).

    The prompt is every message before the last assistant message, one "role: content" line each.

    >>> transcript([{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}])
    ('user: Hi?', 'Hello.')
    """
    msgs = json.loads(messages) if isinstance(messages, str) else messages
    if hasattr(msgs, "tolist"):                                     # a numpy array from a parquet file
        msgs = msgs.tolist()
    if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
        raise ValueError(f"{where}: messages must be a list of {{'role', 'content'}} mappings; got "
                         f"{show(messages)}")
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ValueError(f"{where}: the transcript has no assistant message, so there is no response to label")
    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in msgs[:last])
    return prompt, str(msgs[last]["content"])


def load_apollo_roleplaying(path: str | Path) -> Task:
    r"""Apollo's roleplaying records -> pairs (honest 0, deceptive 1) per scenario, group `apollo-roleplaying-<i>`.

    text = scenario + newline + question; response = answer_prefix + space + completion.

    >>> import tempfile, pathlib, yaml
    >>> rec = {"scenario": "You forgot the essay.", "question": "Teacher: Where is it?", "answer_prefix": "Student:",
    ...        "honest_completion": "I forgot it.", "deceptive_completion": "My dog ate it."}
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "dataset.yaml"
    >>> _ = p.write_text(yaml.safe_dump([rec]))                  # Apollo's data/roleplaying/dataset.yaml layout
    >>> t = load_apollo_roleplaying(p)
    >>> t.labels.tolist(), t.groups.tolist(), t.samples[1]["response"]
    ([0, 1], ['apollo-roleplaying-0', 'apollo-roleplaying-0'], 'Student: My dog ate it.')
    >>> t.samples[0]["text"]
    'You forgot the essay.\nTeacher: Where is it?'
    """
    path = Path(path)
    recs = _records(_read_structured(path), path, "apollo-roleplaying")
    samples = []
    for i, r in enumerate(recs):
        _require(path, r, ROLEPLAYING_KEYS, "apollo-roleplaying", f" (record {i})")
        group = f"apollo-roleplaying-{i}"
        extra = {k: v for k, v in r.items() if k not in ROLEPLAYING_KEYS}
        for label, key in ((0, "honest_completion"), (1, "deceptive_completion")):
            samples.append({**extra, "id": f"{group}-{'deceptive' if label else 'honest'}",
                            "text": f"{r['scenario']}\n{r['question']}", "label": label, "group": group,
                            "scenario": r["scenario"], "question": r["question"], "answer_prefix": r["answer_prefix"],
                            "response": f"{r['answer_prefix']} {r[key]}".strip(), "instruction": r["scenario"]})
    return Task(path.stem, samples, {"path": str(path), "layout": "apollo-roleplaying"})


def _grade(g: Any, honest_max: int, deceptive_min: int) -> int | None:
    """0 honest, 1 deceptive, None ambiguous / refusal / unknown."""
    if isinstance(g, bool):
        return None
    if isinstance(g, (int, float)) or (isinstance(g, str) and g.strip().isdigit()):
        v = float(g)
        return 0 if v <= honest_max else 1 if v >= deceptive_min else None
    s = str(g).strip().lower()
    return 0 if s in HONEST_GRADES else 1 if s in DECEPTIVE_GRADES else None


def load_apollo_rollouts(path: str | Path, honest_max: int = 2, deceptive_min: int = 6) -> Task:
    """Apollo rollout file -> one sample per graded output; group = the rollout (its input dialogue).

    Labels from `graded_deception[i]`: "honest" -> 0, "deceptive" -> 1, a number <= `honest_max` -> 0 and >=
    `deceptive_min` -> 1; anything else is skipped (counts in `task.config["skipped"]`). A trailing assistant
    message in `input_messages` (a prefill such as "Student:") starts the response.

    >>> import json, tempfile, pathlib
    >>> msgs = [{"role": "user", "content": "Where is the essay?"}, {"role": "assistant", "content": "Student:"}]
    >>> rollout = {"input_messages": msgs, "output_strs": ["My dog ate it.", "I forgot it.", "Hmm."],
    ...            "graded_deception": [7, "honest", "ambiguous"]}
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "roleplaying__plain.json"
    >>> _ = p.write_text(json.dumps({"rollouts": [rollout]}))
    >>> t = load_apollo_rollouts(p)                              # grade 7 -> deceptive, "ambiguous" left out
    >>> t.labels.tolist(), t.samples[0]["text"], t.samples[0]["response"], t.config["skipped"]
    ([1, 0], 'user: Where is the essay?', 'Student: My dog ate it.', {'ambiguous': 1})
    """
    path = Path(path)
    data = _read_structured(path)
    if not isinstance(data, dict) or "rollouts" not in data:
        _require(path, data if isinstance(data, dict) else {}, ("rollouts",), "apollo-rollouts")
    rollouts = _records(data["rollouts"], path, "apollo-rollouts")
    samples, skipped = [], {}
    for i, r in enumerate(rollouts):
        _require(path, r, ROLLOUT_KEYS, "apollo-rollouts", f" (rollout {i})")
        msgs = list(r["input_messages"])
        prefill = ""
        if msgs and msgs[-1].get("role") == "assistant":
            prefill = str(msgs.pop()["content"]).strip()
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
        extra = {k: v for k, v in r.items() if k not in (*ROLLOUT_KEYS, "input_messages", "output_messages",
                                                         "grader_reasoning", "input_str")}
        for j, (out, grade) in enumerate(zip(r["output_strs"], r["graded_deception"])):
            label = _grade(grade, honest_max, deceptive_min)
            if label is None:
                skipped[str(grade)] = skipped.get(str(grade), 0) + 1
                continue
            samples.append({**{k: v for k, v in extra.items() if not isinstance(v, (list, dict))},
                            "id": f"{path.stem}-{i}-{j}", "text": prompt, "label": label,
                            "group": f"{path.stem}-{i}", "response": f"{prefill} {str(out).strip()}".strip(),
                            "grade": str(grade)})
    if not samples:
        raise ValueError(f"{path}: no output has an honest or deceptive grade (skipped: {skipped}); pass "
                         f"honest_max=/deceptive_min= for numeric grades")
    return Task(path.stem, samples, {"path": str(path), "layout": "apollo-rollouts", "skipped": skipped,
                                     "honest_max": honest_max, "deceptive_min": deceptive_min})


def _read_table(path: Path) -> pd.DataFrame:
    argcheck.check_path_exists("path", str(path))
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":                                   # json.loads: exact floats (pandas' reader is not)
        rows = []
        for i, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{i + 1}: not valid JSON ({err.msg})") from None
        return pd.DataFrame(_records(rows, path, "liars-bench"))
    data = _read_structured(path)
    return pd.DataFrame(_records(data, path, "liars-bench"))


def _bool_label(v: Any, where: str) -> int:
    if isinstance(v, (bool, int, float)) and v in (0, 1):
        return int(v)
    s = str(v).strip().lower()
    if s in ("true", "1", "yes"):
        return 1
    if s in ("false", "0", "no"):
        return 0
    raise ValueError(f"{where}: deceptive = {v!r} is not true/false")


def load_liars_bench(path: str | Path, group_col: str | None = None) -> Task:
    r"""A Liars' Bench export (.jsonl, .json, .csv or .parquet) -> one sample per transcript, label = `deceptive`.

    group: the column `group_col` when given (e.g. a column that ties transcripts of one question together), else
    each transcript its own group. Every other column (model, dataset, temperature, meta, ...) is kept.

    >>> import json, tempfile, pathlib
    >>> rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Q{i}?"},
    ...                       {"role": "assistant", "content": f"A{i}."}], "deceptive": i == 1, "question": "q"}
    ...         for i in range(2)]
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "liars.json"
    >>> _ = p.write_text(json.dumps(rows))
    >>> t = load_liars_bench(p, group_col="question")
    >>> t.labels.tolist(), t.groups.tolist(), t.samples[1]["text"], t.samples[1]["response"]
    ([0, 1], ['q', 'q'], 'system: Be brief.\nuser: Q1?', 'A1.')
    """
    path = Path(path)
    df = _read_table(path)
    _require(path, df.columns, LIARS_BENCH_KEYS, "liars-bench")
    if group_col is not None:
        _require(path, df.columns, (group_col,), "liars-bench (group_col)")
    samples = []
    for i, row in enumerate(df.to_dict(orient="records")):
        where = f"{path}: row {i}"
        text, response = transcript(row["messages"], where)
        keep = {k: v for k, v in row.items() if k not in LIARS_BENCH_KEYS and not _missing(v)}
        keep = {k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in keep.items()}
        samples.append({**keep, "id": f"{path.stem}-{i}", "text": text, "response": response,
                        "label": _bool_label(row["deceptive"], where),
                        "group": str(row[group_col]) if group_col else f"{path.stem}-{i}"})
    return Task(path.stem, samples, {"path": str(path), "layout": "liars-bench", "group_col": group_col})


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def sniff_layout(path: str | Path) -> str:
    """The layout of a file from its suffix and first record: one of LAYOUTS.

    .yaml/.yml -> apollo-roleplaying; .parquet -> liars-bench; .csv -> csv (probes.tasks.files); .json -> a mapping
    with "rollouts" is apollo-rollouts, records with "scenario" apollo-roleplaying, with "messages" liars-bench;
    .jsonl -> liars-bench when the first line has "messages" and no "text", else jsonl (probes.tasks.files).

    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.jsonl").write_text(json.dumps({"messages": [], "deceptive": True}))
    >>> _ = (folder / "b.jsonl").write_text(json.dumps({"text": "x", "label": 1, "group": "g"}))
    >>> _ = (folder / "c.json").write_text(json.dumps({"rollouts": []}))
    >>> [sniff_layout(folder / n) for n in ("a.jsonl", "b.jsonl", "c.json", "dataset.yaml", "export.parquet")]
    ['liars-bench', 'jsonl', 'apollo-rollouts', 'apollo-roleplaying', 'liars-bench']
    """
    path = Path(path)
    suffix = path.suffix
    if suffix in (".yaml", ".yml"):
        return "apollo-roleplaying"
    if suffix == ".parquet":
        return "liars-bench"
    if suffix == ".csv":
        return "csv"
    if suffix == ".jsonl":
        argcheck.check_path_exists("path", str(path))
        first = next((line for line in path.read_text().splitlines() if line.strip()), "{}")
        try:
            keys = set(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            return "jsonl"
        return "liars-bench" if "messages" in keys and "text" not in keys else "jsonl"
    if suffix == ".json":
        data = _read_structured(path)
        if isinstance(data, dict) and "rollouts" in data:
            return "apollo-rollouts"
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if "scenario" in first:
            return "apollo-roleplaying"
        if "messages" in first:
            return "liars-bench"
        raise ValueError(f"{path}: not a layout codi-lens reads (a mapping with 'rollouts', or records with "
                         f"'scenario' or 'messages'); pass layout= one of {LAYOUTS}")
    raise ValueError(f"{path}: unknown file type {suffix!r}; task files are .jsonl, .json, .csv, .yaml or .parquet")


def load_file(path: str | Path, layout: str | None = None, **kwargs: Any) -> Task:
    r"""A task file in any layout of LAYOUTS (`layout=None`: `sniff_layout`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "export.csv"
    >>> _ = p.write_text('messages,deceptive\n"[{""role"": ""assistant"", ""content"": ""Yes.""}]",true\n')
    >>> load_file(p).config["label_col"]                         # .csv sniffs as probes.tasks.files' CSV reader
    'deceptive'
    >>> load_file(p, layout="liars-bench").config["layout"]      # Liars' Bench columns, read strictly
    'liars-bench'
    """
    layout = sniff_layout(path) if layout is None else argcheck.check_choice("layout", layout, LAYOUTS)
    if layout in ("jsonl", "csv"):
        from probes.tasks.files import load_jsonl, load_liars_bench_csv

        return load_jsonl(path, **kwargs) if layout == "jsonl" else load_liars_bench_csv(path, **kwargs)
    loader = {"apollo-roleplaying": load_apollo_roleplaying, "apollo-rollouts": load_apollo_rollouts,
              "liars-bench": load_liars_bench}[layout]
    return loader(path, **kwargs)
