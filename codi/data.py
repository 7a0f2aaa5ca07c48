"""Data for CODI: GSM8k-Aug files and an offline generator of multi-step arithmetic word problems (the generator and
`Problem` live in the leaf `problems`, re-exported here: `codi.data.arithmetic`, `codi.data.Problem`).

The GSM8k-Aug format (one record per problem, JSON array or JSONL):
    {"question": "...", "cot": "<<16-3-4=9>> <<9*2=18>>", "answer": "18"}

Every problem becomes a `Problem` that also records the result of each reasoning step (`values`), so later
analyses can probe the continuous thoughts for intermediate results.

    >>> from codi import data
    >>> probs = data.arithmetic(n=3, steps=2, seed=0)
    >>> probs[0].cot, probs[0].answer, probs[0].values
    ('<<19-14=5>> <<5/5=1>>', '1', [5, 1])
    >>> train, test = data.split(probs, test_frac=0.34, seed=0)
    >>> len(train), len(test)
    (2, 1)
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from argcheck import BadArgument, check_float, check_int, check_new_path
from formats import atomic_write_text
from problems.arithmetic import MAX_VALUE, NUMBER_RE, STEP_RE, Problem, arithmetic  # noqa: F401 (re-exported)

# ----------------------------------------------------------------------------------------------------------
# files

def _number(text: str) -> int | float | None:
    t = text.strip().replace(",", "")
    if not NUMBER_RE.match(t):
        return None
    x = float(t)
    return int(x) if x == int(x) else x


def _problem_from_record(rec: object, where: str, default_id: str) -> Problem:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected an object with 'question', 'cot', 'answer', got {type(rec).__name__}")
    missing = [k for k in ("question", "cot", "answer") if k not in rec]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}; every record needs 'question', 'cot' and 'answer' "
                         f"(GSM8k-Aug format), found keys {sorted(rec)}")
    answer = str(rec["answer"]).strip()
    num = _number(answer)
    if num is None:
        raise ValueError(f"{where}: answer {rec['answer']!r} is not a number; answers must be plain numbers "
                         f"such as '18' or '-3.5' (fix or drop this record)")
    cot = str(rec["cot"])
    values: list[int | float] = []
    for _, res in STEP_RE.findall(cot):
        r = _number(res)
        if r is not None:
            values.append(r)
    if "values" in rec and isinstance(rec["values"], list):
        values = list(rec["values"])
    steps = int(rec.get("steps", len(STEP_RE.findall(cot))))
    return Problem(id=str(rec.get("id", default_id)), question=str(rec["question"]), cot=cot,
                   answer=answer.replace(",", ""), values=values, steps=steps)


def _json_array_items(text: str, path: Path) -> list[tuple[int, object]]:
    """Parse a JSON array element by element, returning (line number, element) pairs."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    items = []
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise ValueError(f"{path}: unterminated JSON array; the file looks truncated")
        if text[i] == "]":
            return items
        line = text.count("\n", 0, i) + 1
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {line}: invalid JSON ({err.msg})") from None
        items.append((line, obj))


def read_text_lines(path: Path) -> str:
    r"""A text file as UTF-8; invalid bytes raise ValueError naming the file, the line and the byte.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.jsonl"; _ = p.write_bytes(b'{"a": 1}\n{"q": "\xff"}\n')
        >>> read_text_lines(p)
        Traceback (most recent call last):
        ...
        ValueError: ...bad.jsonl: line 2: not UTF-8 text (byte 0xff at offset 16); save the file as UTF-8.
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                         f"save the file as UTF-8.") from None


def load(path: str | os.PathLike) -> list[Problem]:
    """Read a GSM8k-Aug file: a JSON array of records or JSONL, each with `question`, `cot`, `answer`.

    Errors name the line of the offending record (missing fields, non-numeric answer, invalid JSON).

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "test.jsonl"
        >>> _ = p.write_text('{"question": "Ana has 16 eggs. She eats 3 and gives 4 away, then doubles what is '
        ...                  'left. How many?", "cot": "<<16-3-4=9>> <<9*2=18>>", "answer": "18"}')
        >>> probs = load(p)
        >>> probs[0].id, probs[0].answer, probs[0].values, probs[0].steps
        ('test-000000', '18', [9, 18], 2)
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise BadArgument("path", path, "must be the path of a GSM8k-Aug .json or .jsonl file")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file; pass a GSM8k-Aug .json or .jsonl file")
    text = read_text_lines(path)
    stripped = text.lstrip()
    if not stripped:
        raise ValueError(f"{path}: file is empty; expected GSM8k-Aug records (question, cot, answer)")
    if stripped.startswith("["):
        items = _json_array_items(text, path)
    else:
        items = []
        for ln, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                items.append((ln, json.loads(raw)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {ln}: invalid JSON ({err.msg}); JSONL needs one object per line")
    probs = [_problem_from_record(obj, f"{path}: line {ln}", f"{path.stem}-{k:06d}")
             for k, (ln, obj) in enumerate(items)]
    if not probs:
        raise ValueError(f"{path}: no records found")
    return probs


def save(problems: list[Problem], path: str | os.PathLike) -> Path:
    """Write problems as JSONL (`.jsonl`) or a JSON array (any other suffix), atomically (temp file + rename).

        >>> import tempfile
        >>> path = save(arithmetic(10), tempfile.mkdtemp() + "/arith.jsonl")
        >>> len(path.read_text().splitlines()), [p.id for p in load(path)] == [p.id for p in arithmetic(10)]
        (10, True)
    """
    path = check_new_path("path", path, fix="pass a file name such as 'heldout.jsonl'")
    if isinstance(problems, (str, bytes)) or not all(hasattr(p, "to_dict") for p in problems):
        raise BadArgument("problems", problems, "must be a list of codi.data.Problem", "e.g. codi.data.arithmetic(10)")
    recs = [p.to_dict() for p in problems]
    if path.suffix == ".jsonl":
        body = "".join(json.dumps(r) + "\n" for r in recs)
    else:
        body = "[\n" + ",\n".join(json.dumps(r) for r in recs) + "\n]\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, body)
    return path


def split(problems: list[Problem], test_frac: float = 0.1, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Shuffle deterministically and split into (train, test) with round(test_frac * n) test problems.

        >>> train, test = split(arithmetic(100), test_frac=0.2, seed=0)
        >>> len(train), len(test)
        (80, 20)
    """
    check_float("test_frac", test_frac, min=0, max=1, min_open=True, max_open=True, fix="use e.g. test_frac=0.1")
    check_int("seed", seed)
    n_test = round(test_frac * len(problems))
    if n_test == 0 or n_test == len(problems):
        raise BadArgument("test_frac", test_frac, f"leaves an empty split of {len(problems)} problems",
                          "use more problems or another fraction")
    order = list(range(len(problems)))
    random.Random(f"codi-split-{seed}").shuffle(order)
    test_idx = set(order[:n_test])
    train = [p for i, p in enumerate(problems) if i not in test_idx]
    test = [p for i, p in enumerate(problems) if i in test_idx]
    return train, test
