"""Multi-step arithmetic word problems in GSM8k-Aug format, generated offline from a seed (a leaf: no project
imports). `codi.data` re-exports `Problem` and `arithmetic`; probing tasks build on them too.

    >>> from problems.arithmetic import arithmetic
    >>> p = arithmetic(1, steps=2, seed=0)[0]
    >>> p.steps, p.values[-1] == int(p.answer)
    (2, True)
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field

__all__ = ["Problem", "arithmetic", "STEP_RE", "NUMBER_RE", "MAX_VALUE"]

STEP_RE = re.compile(r"<<([^<>]*?)=([^<>=]*)>>")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
MAX_VALUE = 999  # answers and intermediate values stay 1-3 digits


@dataclass
class Problem:
    """One word problem: `question`, GSM8k-Aug `cot`, final `answer` (a number as text), per-step `values`.

    >>> p = Problem("p0", "Tom has 3 apples. He buys 2 more. How many?", "<<3+2=5>>", "5", [5], 1)
    >>> p.to_dict()["values"], p.answer
    ([5], '5')
    """

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
