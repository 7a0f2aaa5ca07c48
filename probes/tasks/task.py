"""`Task`: a named list of samples (id, text, label, group, extra columns) with the settings that made it.

    >>> from probes.tasks.task import Task
    >>> t = Task("toy", [dict(id="a", text="1+1", label=0, group="q0"), dict(id="b", text="1+1?", label=1, group="q0")])
    >>> len(t), t.texts, t.groups.tolist()
    (2, ['1+1', '1+1?'], ['q0', 'q0'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from formats import atomic_write_text

__all__ = ["Task", "REQUIRED"]

REQUIRED = ("id", "text", "label", "group")


@dataclass
class Task:
    """A named list of samples (dicts with id, text, label, group and extra columns) plus the settings used.

    `interp.cache(model, task)` reads `.samples`; `task.texts` / `task.prompts` are the plain texts.

    >>> import tempfile, pathlib
    >>> t = Task("toy", [dict(id=f"s{i}", text=f"q{i // 2}", label=i % 2, group=f"q{i // 2}", topic="x" if i < 2
    ...                       else "y") for i in range(4)])
    >>> t
    Task('toy', 4 samples, 2 groups, labels {0: 2, 1: 2})
    >>> t.labels.tolist(), t[1:3].texts, t.filter(lambda s: s["topic"] == "y").groups.tolist()
    ([0, 1, 0, 1], ['q0', 'q1'], ['q1', 'q1'])
    >>> t.save_jsonl(pathlib.Path(tempfile.mkdtemp()) / "toy.jsonl").read_text().splitlines()[0]
    '{"id": "s0", "text": "q0", "label": 0, "group": "q0", "topic": "x"}'
    >>> Task("bad", [dict(id="a", text="x", label=0)])
    Traceback (most recent call last):
    ...
    ValueError: task 'bad': sample 0 lacks ['group'] (has ['id', 'label', 'text'])
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
        atomic_write_text(path, lines)
        return path

    def __repr__(self) -> str:
        lab = pd.Series(self.labels).value_counts().to_dict() if len(self) else {}
        return f"Task({self.name!r}, {len(self)} samples, {len(set(self.groups))} groups, labels {lab})"
