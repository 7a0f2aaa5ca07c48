"""Tasks with per-step ground truth for model organisms: k-hop pointer chasing and chains of modular operations.

Every problem is a `codi.data.Problem` whose `values` are the value after each step (the last one is the answer)
and whose `cot` lists them as words, so the written reasoning is one token per step in the organisms' word-level
vocabulary. Problems are deterministic from (seed, index); the train / held-out split is by problem: a problem is
held out when a hash of its question falls in the held-out tenth, so no held-out question is ever trained on,
whatever seeds were used.

    >>> task = pointer_chase(hops=3)
    >>> p = task.make(1, seed=0)[0]
    >>> p.question
    '9>12 3>7 2>3 12>10 10>4 7>1 4>2 1>9 | 1'
    >>> p.cot, p.answer, p.values
    ('9 12 10', '10', [9, 12, 10])
    >>> task.follow(p, start=4, steps=1)          # the answer implied by node 4 after hop 1 (4 > 2 > 3)
    3
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from codi.data import Problem

__all__ = ["Task", "pointer_chase", "modular_chain", "is_held_out", "TASK_FAMILIES"]

SEP, EQ = "|", "="


def is_held_out(question: str) -> bool:
    """True for the tenth of all questions that are never trained on (a hash of the question text).

    >>> task = pointer_chase(3)
    >>> all(is_held_out(p.question) for p in task.make(20, seed=0, split="test"))
    True
    >>> any(is_held_out(p.question) for p in task.make(20, seed=0, split="train"))
    False
    """
    return hashlib.sha256(question.encode()).digest()[0] < 26  # 26/256 ~ 10%


@dataclass(frozen=True)
class Task:
    """A task family at one depth: `make(n, seed, split)` gives problems; `follow` replays the rest of a chain.

    `words` is the task's whole vocabulary (besides the structural tokens), `n_values` the number of values a
    step can take (chance = 1 / n_values for the answer).

    >>> task = Task("modular", depth=3, nodes=11, names=11)          # what modular_chain(3) builds
    >>> task.name, task.n_values, task.words[:3], task.words[-2:]
    ('modular3', 11, ['0', '1', '2'], ['*9', '*10'])
    >>> p = task.make(1, seed=0)[0]
    >>> p.question, p.values, task.mapping(p)                 # ((7 + 8) * 3) * 7 mod 11
    ('7 +8 *3 *7 |', [4, 1, 7], [('+', 8), ('*', 3), ('*', 7)])
    """

    family: str
    depth: int
    nodes: int
    names: int

    @property
    def words(self) -> list[str]:
        if self.family == "pointer":
            ids = [str(i) for i in range(1, self.names + 1)]
            return ids + [f"{a}>{b}" for a in ids for b in ids if a != b]
        vals = [str(i) for i in range(self.names)]
        return vals + [f"{op}{b}" for op in "+*" for b in range(1, self.names)]

    @property
    def n_values(self) -> int:
        return self.nodes if self.family == "pointer" else self.names

    @property
    def name(self) -> str:
        return f"{self.family}{self.depth}"

    def _one(self, rng: random.Random) -> Problem:
        if self.family == "pointer":
            names = rng.sample(range(1, self.names + 1), self.nodes)
            nxt = {names[i]: names[(i + 1) % self.nodes] for i in range(self.nodes)}  # one cycle over the nodes
            edges = [f"{a}>{b}" for a, b in nxt.items()]
            rng.shuffle(edges)
            start = rng.choice(names)
            values, v = [], start
            for _ in range(self.depth):
                v = nxt[v]
                values.append(v)
            question = f"{' '.join(edges)} {SEP} {start}"
        else:
            m = self.names
            start = rng.randrange(m)
            ops = [(rng.choice("+*"), rng.randrange(1, m)) for _ in range(self.depth)]
            values, v = [], start
            for op, b in ops:
                v = (v + b) % m if op == "+" else (v * b) % m
                values.append(v)
            question = f"{start} {' '.join(f'{op}{b}' for op, b in ops)} {SEP}"
        return Problem(id="", question=question, cot=" ".join(map(str, values)), answer=str(values[-1]),
                       values=values, steps=self.depth)

    def make(self, n: int, seed: int = 0, split: str = "any") -> list[Problem]:
        """`n` problems from `seed`; split "train" or "test" keeps only questions of that side of the split.

        >>> len(pointer_chase(3).make(5, seed=1, split="test"))
        5
        """
        if split not in ("any", "train", "test"):
            raise ValueError(f"split={split!r}: use 'train', 'test' or 'any'.")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r}: ask for at least 1 problem.")
        rng = random.Random(f"{self.name}-{self.nodes}-{self.names}-{seed}")
        out: list[Problem] = []
        while len(out) < n:
            p = self._one(rng)
            if split == "any" or is_held_out(p.question) == (split == "test"):
                p.id = f"{self.name}-s{seed}-{len(out)}"
                out.append(p)
        return out

    def restart(self, p: Problem, start: int) -> Problem:
        """`p` with another start value (same mapping or operations), values and answer recomputed."""
        if self.family == "pointer":
            rule, values, v = self.mapping(p), [], start
            for _ in range(self.depth):
                v = rule[v]
                values.append(v)
            question = p.question.rsplit(f" {SEP} ", 1)[0] + f" {SEP} {start}"
        else:
            values, v = [], start
            for op, b in self.mapping(p):
                v = (v + b) % self.names if op == "+" else (v * b) % self.names
                values.append(v)
            question = f"{start} " + p.question.split(" ", 1)[1]
        return Problem(id=p.id + f"-start{start}", question=question, cot=" ".join(map(str, values)),
                       answer=str(values[-1]), values=values, steps=self.depth)

    def pairs(self, n: int, seed: int = 0, step: int = 1) -> tuple[list[Problem], list[Problem]]:
        """(clean, corrupt): held-out problems and the same problems restarted so that the value after `step` and
        the answer both differ (see `restart`)."""
        rng = random.Random(f"pairs-{self.name}-{seed}-{step}")
        clean, corrupt = [], []
        for p in self.make(4 * n, seed=seed + 7919, split="test"):
            starts = list(self.mapping(p)) if self.family == "pointer" else list(range(self.names))
            rng.shuffle(starts)
            for s in starts:
                q = self.restart(p, s)
                if q.values[step - 1] != p.values[step - 1] and q.answer != p.answer:
                    clean.append(p)
                    corrupt.append(q)
                    break
            if len(clean) == n:
                return clean, corrupt
        raise ValueError(f"could not find {n} pairs for step {step} of {self.name}.")

    def mapping(self, p: Problem) -> dict:
        """pointer: {node: next node}; modular: the list of (op, operand)."""
        if self.family == "pointer":
            edges = p.question.split(f" {SEP} ")[0].split()
            return {int(a): int(b) for a, b in (e.split(">") for e in edges)}
        return [(w[0], int(w[1:])) for w in p.question.split()[1:-1]]

    def follow(self, p: Problem, start: int, steps: int) -> int:
        """The answer `p`'s chain gives when the value after step `steps` (1-based) is `start` instead."""
        rule, v = self.mapping(p), start
        for i in range(steps, self.depth):
            if self.family == "pointer":
                v = rule.get(v, v)
            else:
                op, b = rule[i]
                v = (v + b) % self.names if op == "+" else (v * b) % self.names
        return v


def pointer_chase(hops: int, nodes: int = 8, names: int = 12) -> Task:
    """k-hop pointer chasing over a random cycle of `nodes` nodes named by `names` numerals (one token per edge).

    >>> task = pointer_chase(2, nodes=4, names=5)
    >>> p = task.make(1, seed=0)[0]
    >>> p.question, p.cot, p.answer                    # start at 4: 4 > 2 > 3
    ('3>5 5>4 2>3 4>2 | 4', '2 3', '3')
    """
    if not isinstance(hops, int) or hops < 1:
        raise ValueError(f"hops={hops!r}: use at least 1 hop.")
    if not 2 <= nodes <= names:
        raise ValueError(f"nodes={nodes}, names={names}: need 2 <= nodes <= names.")
    return Task("pointer", hops, nodes, names)


def modular_chain(ops: int, modulus: int = 11) -> Task:
    """A chain of `ops` operations (+b or *b, b in 1..modulus-1, mod a prime `modulus`) on a start value.

    >>> p = modular_chain(2, modulus=7).make(1, seed=1)[0]
    >>> p.question, p.values, p.answer                 # (2 + 2) mod 7 = 4, (4 + 2) mod 7 = 6
    ('2 +2 +2 |', [4, 6], '6')
    """
    if not isinstance(ops, int) or ops < 1:
        raise ValueError(f"ops={ops!r}: use at least 1 operation.")
    if modulus < 2:
        raise ValueError(f"modulus={modulus}: use at least 2.")
    return Task("modular", ops, modulus, modulus)


TASK_FAMILIES = {"pointer": pointer_chase, "modular": modular_chain}
