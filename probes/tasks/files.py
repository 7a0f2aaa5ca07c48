r"""Tasks from files: the user's own JSONL, and a Liars' Bench style CSV.

    >>> import json, tempfile, pathlib
    >>> from probes.tasks.files import load_jsonl, load_liars_bench_csv
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> lines = [json.dumps({"text": f"t{i}", "label": i % 2, "group": f"q{i // 2}", "topic": "x"}) for i in range(4)]
    >>> _ = (folder / "my.jsonl").write_text("\n".join(lines))   # one {"text", "label", "group", ...} per line
    >>> t = load_jsonl(folder / "my.jsonl")
    >>> t, t.samples[0]
    (Task('my', 4 samples, 2 groups, labels {0: 2, 1: 2}),
     {'text': 't0', 'topic': 'x', 'label': 0, 'group': 'q0', 'id': 'my-0'})
    >>> _ = (folder / "liars.csv").write_text("statement,deceptive,index\nSky is red.,true,0\nGrass is green.,false,0")
    >>> load_liars_bench_csv(folder / "liars.csv").labels.tolist()      # columns found by name (see below)
    [1, 0]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from argcheck import check_choice, check_path_exists, check_str
from probes.tasks.task import Task

TEXT_COLS = ("text", "transcript", "messages", "statement", "response")
LABEL_COLS = ("label", "deceptive", "is_deceptive", "lie", "is_lie")
GROUP_COLS = ("group", "question_id", "group_id", "pair_id", "index", "id")
TRUE = {"true", "1", "yes", "deceptive", "lie", "t", "y"}
FALSE = {"false", "0", "no", "honest", "truthful", "f", "n"}


LABEL_KINDS = ("auto", "binary", "numeric")


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
    raise ValueError(f"{where}: label {v!r} is not binary; use 0/1 or true/false (or honest/deceptive), or "
                     f"labels='numeric' for a numeric target")


def _number(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{where}: label {v!r} is not a finite number (labels='numeric')")
    return v


def _read_text(path: Path) -> str:
    """A text file as UTF-8; invalid bytes raise ValueError naming the file, the line and the byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); save "
                         f"the file as UTF-8") from None


def _records(path: Path) -> list[tuple[int, dict]]:
    out = []
    for i, line in enumerate(_read_text(path).splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i + 1}: not valid JSON ({err.msg})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{i + 1}: a JSON {type(rec).__name__}, not an object with text, label, group")
        out.append((i + 1, rec))
    if not out:
        raise ValueError(f"{path}: no samples (the file is empty); write one JSON object per line")
    return out


def load_jsonl(path: str | Path, label_key: str = "label", group_key: str = "group", labels: str = "auto") -> Task:
    r"""One JSON object per line with "text", a label and a group; other keys are kept.

    `labels`: "binary" (every label 0/1, true/false, honest/deceptive, ...: a label 2 or 0.5 is refused with its
    line), "numeric" (finite numbers, for ridge probes), or "auto" (binary when any label is a word or a bool or
    every label is 0/1, else numeric). Errors name the file and the line.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
    >>> _ = p.write_text('{"text": "a", "label": 1, "group": "q0"}\n{"text": "b", "label": 2, "group": "q1"}\n')
    >>> load_jsonl(p, labels="binary")
    Traceback (most recent call last):
    ...
    ValueError: ...t.jsonl:2: label 2 is not binary; use 0/1 or true/false (or honest/deceptive), or ...
    """
    check_choice("labels", labels, LABEL_KINDS)
    for name, key in (("label_key", label_key), ("group_key", group_key)):
        check_str(name, key)
    path = Path(check_path_exists("path", path, fix="pass a .jsonl file with one sample per line"))
    recs = _records(path)
    for ln, rec in recs:
        for k in ("text", label_key, group_key):
            if k not in rec:
                raise ValueError(f"{path}:{ln}: missing key {k!r} (has {sorted(rec)}); every line needs text, "
                                 f"{label_key} and {group_key} (group = what must stay on one side of a split)")
        if not isinstance(rec["text"], str) or rec[group_key] is None or isinstance(rec[group_key], (dict, list)):
            raise ValueError(f"{path}:{ln}: text must be a string and {group_key} a string or number (found "
                             f"{rec['text']!r}, {rec[group_key]!r})")
    raw = [rec[label_key] for _, rec in recs]
    if labels == "auto":
        words = any(isinstance(v, (bool, str)) for v in raw)
        labels = "binary" if words or all(not isinstance(v, bool) and v in (0, 1) for v in raw) else "numeric"
    samples, ids = [], set()
    for (ln, rec), lab in zip(recs, raw):
        where = f"{path}:{ln}"
        rec = dict(rec)
        del rec[label_key]
        rec["label"] = _label(lab, where) if labels == "binary" else _number(lab, where)
        rec["group"] = str(rec.pop(group_key))
        rec["id"] = str(rec.get("id", f"{path.stem}-{ln - 1}"))
        if rec["id"] in ids:
            raise ValueError(f"{where}: id {rec['id']!r} appears twice; give every sample its own id")
        ids.add(rec["id"])
        samples.append(rec)
    return Task(path.stem, samples, {"path": str(path), "labels": labels})


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
    r"""A Liars' Bench style CSV: one transcript per row with a deception label.

    Columns are found by name unless given: text from one of TEXT_COLS (a `messages` column holding a JSON chat
    list becomes "role: content" lines, and its last assistant message goes to `response`), label from LABEL_COLS
    (true/false, 1/0, deceptive/honest), group from GROUP_COLS (else each row is its own group). Other columns
    (dataset, model, ...) are kept.

    >>> import json, tempfile, pathlib
    >>> chat = json.dumps([{"role": "user", "content": "Is it true?"}, {"role": "assistant", "content": "Yes."}])
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "liars.csv"
    >>> _ = p.write_text('messages,deceptive,index,model\n' + "".join(
    ...     f'"{chat.replace(chr(34), 2 * chr(34))}",{d},{i},m\n' for i, d in enumerate(["True", "False"])))
    >>> t = load_liars_bench_csv(p)
    >>> t.labels.tolist(), t.samples[0]["text"], t.samples[0]["response"], t.samples[0]["model"]
    ([1, 0], 'user: Is it true?\nassistant: Yes.', 'Yes.', 'm')
    >>> t.config["text_col"], t.config["label_col"], t.config["group_col"]
    ('messages', 'deceptive', 'index')
    """
    path = Path(check_path_exists("path", path, fix="pass a CSV file with a text and a label column"))
    _read_text(path)  # invalid UTF-8: name the file and the line
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
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
