"""Tasks from files: the user's own JSONL, and a Liars' Bench style CSV.

    >>> from probes.tasks.files import load_jsonl, load_liars_bench_csv
    >>> t = load_jsonl("my.jsonl")           # lines like {"text": "...", "label": 1, "group": "q17", "topic": "x"}
    >>> t = load_liars_bench_csv("liars.csv")  # columns like messages / deceptive / index (see below)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from probes.tasks.task import Task

TEXT_COLS = ("text", "transcript", "messages", "statement", "response")
LABEL_COLS = ("label", "deceptive", "is_deceptive", "lie", "is_lie")
GROUP_COLS = ("group", "question_id", "group_id", "pair_id", "index", "id")
TRUE = {"true", "1", "yes", "deceptive", "lie", "t", "y"}
FALSE = {"false", "0", "no", "honest", "truthful", "f", "n"}


def _label(v, where: str) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)) and v in (0, 1):
        return int(v)
    s = str(v).strip().lower()
    if s in TRUE:
        return 1
    if s in FALSE:
        return 0
    raise ValueError(f"{where}: label {v!r} is not binary; use 0/1 or true/false (or honest/deceptive)")


def load_jsonl(path: str | Path, label_key: str = "label", group_key: str = "group") -> Task:
    """One JSON object per line with "text", a binary or numeric label, and a group; other keys are kept."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    samples = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i + 1}: not valid JSON ({err.msg})") from err
        for k in ("text", label_key, group_key):
            if k not in rec:
                raise ValueError(f"{path}:{i + 1}: missing key {k!r} (has {sorted(rec)}); every line needs text, "
                                 f"{label_key} and {group_key} (group = what must stay on one side of a split)")
        lab = rec.pop(label_key)
        rec["label"] = lab if isinstance(lab, (int, float)) and not isinstance(lab, bool) else \
            _label(lab, f"{path}:{i + 1}")
        rec["group"] = str(rec.pop(group_key))
        rec.setdefault("id", f"{path.stem}-{i}")
        rec["id"] = str(rec["id"])
        samples.append(rec)
    return Task(path.stem, samples, {"path": str(path)})


def _messages_text(v) -> tuple[str, str]:
    """A chat transcript (JSON list of {role, content}) -> (full text, last assistant message)."""
    try:
        msgs = json.loads(v) if isinstance(v, str) else v
    except json.JSONDecodeError:
        return str(v), ""
    if not isinstance(msgs, list):
        return str(v), ""
    lines, last = [], ""
    for m in msgs:
        role, content = m.get("role", "?"), m.get("content", "")
        lines.append(f"{role}: {content}")
        if role == "assistant":
            last = content
    return "\n".join(lines), last


def _pick(df: pd.DataFrame, given: str | None, options: tuple[str, ...], what: str) -> str | None:
    if given is not None:
        if given not in df.columns:
            raise KeyError(f"{what} column {given!r} not in the CSV; columns are {list(df.columns)}")
        return given
    return next((c for c in options if c in df.columns), None)


def load_liars_bench_csv(path: str | Path, text_col: str | None = None, label_col: str | None = None,
                         group_col: str | None = None) -> Task:
    """A Liars' Bench style CSV: one transcript per row with a deception label.

    Columns are found by name unless given: text from one of TEXT_COLS (a `messages` column holding a JSON chat
    list becomes "role: content" lines, and its last assistant message goes to `response`), label from LABEL_COLS
    (true/false, 1/0, deceptive/honest), group from GROUP_COLS (else each row is its own group). Other columns
    (dataset, model, ...) are kept.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    df = pd.read_csv(path)
    tc = _pick(df, text_col, TEXT_COLS, "text")
    lc = _pick(df, label_col, LABEL_COLS, "label")
    gc = _pick(df, group_col, GROUP_COLS, "group")
    if tc is None or lc is None:
        raise ValueError(f"{path}: could not find a {'text' if tc is None else 'label'} column among "
                         f"{list(df.columns)}; pass text_col=/label_col=")
    samples = []
    for i, row in enumerate(df.to_dict(orient="records")):
        rec = {k: v for k, v in row.items() if k not in (tc, lc) and not (isinstance(v, float) and pd.isna(v))}
        if tc == "messages":
            rec["text"], rec["response"] = _messages_text(row[tc])
        else:
            rec["text"] = str(row[tc])
        rec["label"] = _label(row[lc], f"{path}: row {i}")
        rec["group"] = str(row[gc]) if gc is not None else f"row-{i}"
        rec["id"] = f"{path.stem}-{i}" if "id" not in row or gc == "id" else str(row["id"])
        samples.append(rec)
    return Task(path.stem, samples, {"path": str(path), "text_col": tc, "label_col": lc, "group_col": gc})
