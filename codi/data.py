"""Data for CODI: GSM8k-Aug files and an offline generator of multi-step arithmetic word problems.

The GSM8k-Aug format (one record per problem, JSON array or JSONL):
    {"question": "...", "cot": "<<16-3-4=9>> <<9*2=18>>", "answer": "18"}

Every problem becomes a `Problem` that also records the result of each reasoning step (`values`), so later
analyses can probe the continuous thoughts for intermediate results.

    >>> from codi import data
    >>> probs = data.arithmetic(n=3, steps=2, seed=0)
    >>> probs[0].cot, probs[0].answer, probs[0].values   # doctest: +SKIP
    ('<<7+5=12>> <<12*3=36>>', '36', [12, 36])
    >>> train, test = data.split(probs, test_frac=0.34, seed=0)
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

STEP_RE = re.compile(r"<<([^<>]*?)=([^<>=]*)>>")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
MAX_VALUE = 999  # answers and intermediate values stay 1-3 digits


@dataclass
class Problem:
    """One word problem: `question`, GSM8k-Aug `cot`, final `answer` (a number as text), per-step `values`."""

    id: str
    question: str
    cot: str
    answer: str
    values: list[int | float] = field(default_factory=list)
    steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------
# generator

NAMES = ["Tom", "Anna", "Liam", "Maya", "Omar", "Sara", "Ben", "Lena", "Ravi", "Chloe", "Jon", "Nina", "Kofi",
         "Emma", "Hugo", "Iris", "Mateo", "Yuki", "Zoe", "Paul"]
PRONOUN = {"Tom": "He", "Liam": "He", "Omar": "He", "Ben": "He", "Ravi": "He", "Jon": "He", "Kofi": "He",
           "Hugo": "He", "Mateo": "He", "Paul": "He"}  # everyone else: "She"
OBJECTS = ["apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards", "coins", "books",
           "eggs", "balloons", "candies", "beads", "toy cars"]
PLACES = ["basket", "jar", "box", "bag", "drawer", "crate"]

# Each scenario: opening sentence, then phrases per operation; {b} is the step's number.
# Multiplication uses factors 2-4 and division only exact quotients, so every value is a whole number.
SCENARIOS = [
    {
        "start": "{name} has {a} {obj}.",
        "+": ["{P} buys {b} more {obj}.", "{P} finds {b} more {obj}.", "A friend gives {p_obj} {b} {obj}."],
        "-": ["{P} gives {b} {obj} to a friend.", "{P} loses {b} {obj}.", "{P} uses {b} of the {obj}."],
        "*": ["Then {p} ends up with {b} times as many {obj} as before."],
        "/": ["{P} splits the {obj} equally into {b} groups and keeps only one group."],
        "question": "How many {obj} does {name} have now?",
    },
    {
        "start": "A {place} holds {a} {obj}.",
        "+": ["{name} puts {b} more {obj} into the {place}.", "Someone adds {b} {obj} to the {place}."],
        "-": ["{name} takes {b} {obj} out of the {place}.", "{b} {obj} fall out of the {place}."],
        "*": ["The number of {obj} in the {place} then becomes {b} times as large."],
        "/": ["The {obj} are shared equally among {b} {place}s and only one {place} is kept."],
        "question": "How many {obj} are in the {place} now?",
    },
    {
        "start": "{name} has {a} dollars.",
        "+": ["{P} earns {b} dollars.", "{P} gets {b} dollars as a gift.", "{P} sells a toy for {b} dollars."],
        "-": ["{P} spends {b} dollars on lunch.", "{P} pays {b} dollars for a ticket.", "{P} loses {b} dollars."],
        "*": ["Then {p} ends up with {b} times as much money as before."],
        "/": ["{P} divides the money equally among {b} envelopes and keeps one envelope."],
        "question": "How many dollars does {name} have now?",
    },
    {
        "start": "There are {a} {obj} on a table.",
        "+": ["{name} brings {b} more {obj}.", "{b} more {obj} are added to the table."],
        "-": ["{name} removes {b} {obj}.", "{b} {obj} are taken away."],
        "*": ["The number of {obj} on the table is then multiplied by {b}."],
        "/": ["The {obj} are divided equally into {b} piles and all but one pile are removed."],
        "question": "How many {obj} are on the table now?",
    },
]


def _pick_step(rng: random.Random, v: int) -> tuple[str, int] | None:
    """Choose an operation and number for the current value `v`, keeping the result in 0..MAX_VALUE."""
    ops = ["+", "-", "*", "/"]
    rng.shuffle(ops)
    for op in ops:
        if op == "+" and v + 2 <= MAX_VALUE:
            return op, rng.randint(2, min(20, MAX_VALUE - v))
        if op == "-" and v >= 3:
            return op, rng.randint(2, min(20, v - 1))
        if op == "*" and 2 <= v and v * 2 <= MAX_VALUE:
            return op, rng.randint(2, min(4, MAX_VALUE // v))
        if op == "/":
            divisors = [d for d in (2, 3, 4, 5) if v % d == 0 and v // d >= 1]
            if divisors:
                return op, rng.choice(divisors)
    return None


def _apply(op: str, v: int, b: int) -> int:
    return {"+": v + b, "-": v - b, "*": v * b, "/": v // b}[op]


def _one_problem(rng: random.Random, n_steps: int) -> Problem:
    scen = rng.choice(SCENARIOS)
    name = rng.choice(NAMES)
    he = PRONOUN.get(name, "She")
    slots = {"name": name, "P": he, "p": he.lower(), "p_obj": "him" if he == "He" else "her",
             "obj": rng.choice(OBJECTS), "place": rng.choice(PLACES)}
    v = rng.randint(2, 30)
    sentences = [scen["start"].format(a=v, **slots)]
    steps, values = [], []
    for _ in range(n_steps):
        op, b = _pick_step(rng, v)  # never None: "+" fits below 998, "-" above 2
        new = _apply(op, v, b)
        sentences.append(rng.choice(scen[op]).format(b=b, **slots))
        steps.append(f"<<{v}{op}{b}={new}>>")
        values.append(new)
        v = new
    sentences.append(scen["question"].format(**slots))
    return Problem(id="", question=" ".join(sentences), cot=" ".join(steps), answer=str(v), values=values,
                   steps=n_steps)


def arithmetic(n: int, steps: int | tuple[int, int] = (2, 3), seed: int = 0) -> list[Problem]:
    """Generate `n` distinct multi-step arithmetic word problems in GSM8k-Aug format, deterministically from `seed`.

    `steps` is a fixed number of operations or an inclusive range `(lo, hi)` drawn uniformly per problem.
    Every intermediate value is a whole number in 0..999 and is recorded in `Problem.values`.

        >>> probs = arithmetic(100, steps=(2, 3), seed=0)
        >>> all(p.values[-1] == int(p.answer) for p in probs)
        True
    """
    lo, hi = (steps, steps) if isinstance(steps, int) else tuple(steps)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (1 <= lo <= hi):
        raise ValueError(f"steps must be >= 1 (an int or a range (lo, hi) with lo <= hi), got {steps!r}")
    rng = random.Random(f"codi-arithmetic-{seed}")
    out: list[Problem] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not generate {n} distinct problems with steps={steps!r}; ask for fewer")
        p = _one_problem(rng, rng.randint(lo, hi))
        if p.question in seen:
            continue
        seen.add(p.question)
        p.id = f"arith-s{seed}-{len(out):06d}"
        out.append(p)
    return out


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


def load(path: str | os.PathLike) -> list[Problem]:
    """Read a GSM8k-Aug file: a JSON array of records or JSONL, each with `question`, `cot`, `answer`.

    Errors name the line of the offending record (missing fields, non-numeric answer, invalid JSON).

        >>> probs = load("gsm8k_aug_test.jsonl")        # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file; pass a GSM8k-Aug .json or .jsonl file")
    text = path.read_text(encoding="utf-8")
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

        >>> save(arithmetic(10), "/tmp/arith.jsonl")    # doctest: +SKIP
    """
    path = Path(path)
    recs = [p.to_dict() for p in problems]
    if path.suffix == ".jsonl":
        body = "".join(json.dumps(r) + "\n" for r in recs)
    else:
        body = "[\n" + ",\n".join(json.dumps(r) for r in recs) + "\n]\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def split(problems: list[Problem], test_frac: float = 0.1, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Shuffle deterministically and split into (train, test) with round(test_frac * n) test problems.

        >>> train, test = split(arithmetic(100), test_frac=0.2, seed=0)
        >>> len(train), len(test)
        (80, 20)
    """
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be strictly between 0 and 1, got {test_frac}")
    n_test = round(test_frac * len(problems))
    if n_test == 0 or n_test == len(problems):
        raise ValueError(f"test_frac={test_frac} on {len(problems)} problems leaves an empty split; "
                         f"use more problems or another fraction")
    order = list(range(len(problems)))
    random.Random(f"codi-split-{seed}").shuffle(order)
    test_idx = set(order[:n_test])
    train = [p for i, p in enumerate(problems) if i not in test_idx]
    test = [p for i, p in enumerate(problems) if i in test_idx]
    return train, test
