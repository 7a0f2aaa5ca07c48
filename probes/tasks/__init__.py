"""Probing tasks: samples with text, label and group, generated offline from a seed, or read from files.

    >>> from probes import tasks
    >>> t = tasks.load("deception-arith", n=8, seed=0)      # 4 questions x {honest, lying}
    >>> t.samples[0]["label"], t.samples[0]["group"] == t.samples[1]["group"]
    (0, True)
    >>> t.texts[:1]                                          # prompts for interp.cache (also: t.prompts)
    >>> t.to_frame().head()                                  # pandas view
    >>> tasks.names()
    ['deception-arith', 'instructed-facts', 'intermediate-values']

Files: `tasks.load("my.jsonl")` (one {"text", "label", "group", ...} per line) and
`tasks.load("liars.csv")` (Liars' Bench style CSV), see probes.tasks.files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

REQUIRED = ("id", "text", "label", "group")


@dataclass
class Task:
    """A named list of samples (dicts with id, text, label, group and extra columns) plus the settings used.

    `interp.cache(model, task)` reads `.samples`; `task.texts` / `task.prompts` are the plain texts.
    """

    name: str
    samples: list[dict]
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, s in enumerate(self.samples):
            missing = [k for k in REQUIRED if k not in s]
            if missing:
                raise ValueError(f"task {self.name!r}: sample {i} lacks {missing} (has {sorted(s)})")
        ids = [s["id"] for s in self.samples]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task {self.name!r}: sample ids are not unique")

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Task(self.name, self.samples[i], dict(self.config))
        return self.samples[i]

    @property
    def texts(self) -> list[str]:
        return [s["text"] for s in self.samples]

    prompts = texts

    @property
    def labels(self) -> np.ndarray:
        return np.array([s["label"] for s in self.samples])

    @property
    def groups(self) -> np.ndarray:
        return np.array([str(s["group"]) for s in self.samples])

    def records(self) -> list[dict]:
        """Copies of the samples (what interp.cache / templates consume)."""
        return [dict(s) for s in self.samples]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples)

    def filter(self, fn: Callable[[dict], bool]) -> Task:
        """Samples for which fn(sample) is true, e.g. t.filter(lambda s: s["fact_type"] == "capital")."""
        return Task(self.name, [s for s in self.samples if fn(s)], dict(self.config))

    def save_jsonl(self, path: str | Path) -> Path:
        """One JSON object per line; `load(path)` reads it back."""
        lines = "\n".join(json.dumps(s) for s in self.samples) + "\n"
        path = Path(path)
        path.write_text(lines)
        return path

    def __repr__(self) -> str:
        lab = pd.Series(self.labels).value_counts().to_dict() if len(self) else {}
        return f"Task({self.name!r}, {len(self)} samples, {len(set(self.groups))} groups, labels {lab})"


def _registry() -> dict[str, Callable[..., Task]]:
    from probes.tasks.arith import deception_arith, intermediate_values
    from probes.tasks.facts import instructed_facts
    return {"deception-arith": deception_arith, "instructed-facts": instructed_facts,
            "intermediate-values": intermediate_values}


def names() -> list[str]:
    """Names of the built-in generated tasks."""
    return sorted(_registry())


def load(name: str, n: int = 200, seed: int = 0, **kwargs: Any) -> Task:
    """A built-in task by name (n samples, deterministic in seed), or a file: `.jsonl` or `.csv`.

    >>> load("deception-arith", n=400, seed=0, placement="response")   # control: instruction only in the response
    >>> load("instructed-facts", n=200, facts=("capital", "element"))
    >>> load("intermediate-values", n=300, step=1)
    >>> load("data/my_task.jsonl")
    """
    p = str(name)
    if p.endswith(".jsonl") or p.endswith(".csv"):
        from probes.tasks.files import load_jsonl, load_liars_bench_csv
        return load_jsonl(p, **kwargs) if p.endswith(".jsonl") else load_liars_bench_csv(p, **kwargs)
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown task {name!r}; built-in tasks are {sorted(reg)}, or pass a .jsonl/.csv path")
    if n <= 0:
        raise ValueError(f"n={n}: ask for at least one sample")
    return reg[name](n=n, seed=seed, **kwargs)


__all__ = ["Task", "load", "names"]
