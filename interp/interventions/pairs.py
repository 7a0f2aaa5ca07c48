"""Counterfactual pairs for activation patching: the same arithmetic problem with its starting number changed.

    >>> from codi import data
    >>> from interp.interventions.pairs import changed_number_pairs
    >>> clean, corrupt = changed_number_pairs(data.arithmetic(4, steps=2, seed=0), seed=0)
    >>> clean[0].question != corrupt[0].question and clean[0].answer != corrupt[0].answer
    True

The corrupt problem keeps every word and operation; only the first number (the starting value) changes, to one
with the same number of digits (and, with `tokenizer=`, the same number of prompt tokens, so every position
label lines up), and its chain of thought, intermediate values and answer are recomputed. Problems for which
no such number keeps every step valid (whole numbers, nothing below zero) and changes the answer are skipped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace

from codi.data import STEP_RE, Problem

__all__ = ["changed_number_pairs", "replay"]

_NUM = re.compile(r"\d+")
_OP = re.compile(r"^\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*$")


def replay(cot: str, start: int) -> tuple[str, list[int]] | None:
    """Recompute a GSM8k-Aug chain `<<a op b=c>> ...` from a new starting value; None if a step becomes
    invalid, or if the chain is not one line of steps (each step's left operand the previous step's result: a
    step that starts from a fresh number cannot be recomputed from the new start).

    >>> replay("<<7+5=12>> <<12*3=36>>", 8)
    ('<<8+5=13>> <<13*3=39>>', [13, 39])
    >>> replay("<<3*4=12>> <<2*6=12>> <<12+12=24>>", 5) is None     # step 2 does not use step 1's result
    True
    """
    v, steps, values, prev = start, [], [], None
    for lhs, rhs in STEP_RE.findall(cot):
        m = _OP.match(lhs)
        if not m or (prev is not None and int(m.group(1)) != prev):
            return None
        try:
            prev = int(rhs.strip())
        except ValueError:
            return None
        op, b = m.group(2), int(m.group(3))
        if op == "/" and (b == 0 or v % b):
            return None
        new = {"+": v + b, "-": v - b, "*": v * b, "/": v // b if b else 0}[op]
        if new < 0:
            return None
        steps.append(f"<<{v}{op}{b}={new}>>")
        values.append(new)
        v = new
    return (" ".join(steps), values) if steps else None


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def changed_number_pairs(
    problems: Sequence[Problem], tokenizer=None, seed: int = 0, tries: int = 40
) -> tuple[list[Problem], list[Problem]]:
    """(clean, corrupt): for each usable problem, a copy whose starting number is changed (see module
    docstring).

    >>> import interp
    >>> from codi import data
    >>> tok = interp.load_model("tiny-llama").tokenizer
    >>> clean, corrupt = changed_number_pairs(data.arithmetic(8, steps=2, seed=1), tokenizer=tok)
    >>> all(len(tok(a.question)["input_ids"]) == len(tok(b.question)["input_ids"]) for a, b in zip(clean, corrupt))
    True
    """
    rng = random.Random(seed)
    clean, corrupt = [], []
    for p in problems:
        first = _NUM.search(p.question)
        lhs = STEP_RE.findall(p.cot)
        m = _OP.match(lhs[0][0]) if lhs else None
        if first is None or m is None or int(first.group(0)) != int(m.group(1)):
            continue
        a, digits = int(first.group(0)), len(first.group(0))
        lo, hi = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
        cands = [x for x in range(lo, hi + 1) if x != a]
        rng.shuffle(cands)
        for x in cands[:tries]:
            got = replay(p.cot, x)
            if got is None or str(got[1][-1]) == p.answer.strip():
                continue
            q = p.question[: first.start()] + str(x) + p.question[first.end() :]
            if tokenizer is not None and _n_tokens(tokenizer, q) != _n_tokens(tokenizer, p.question):
                continue
            clean.append(p)
            corrupt.append(
                replace(
                    p, id=f"{p.id}-changed", question=q, cot=got[0], answer=str(got[1][-1]), values=got[1]
                )
            )
            break
    return clean, corrupt
