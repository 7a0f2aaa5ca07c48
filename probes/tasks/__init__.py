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

from typing import Any, Callable

from argcheck import check_int, check_str
from probes.tasks.task import REQUIRED, Task  # noqa: F401 (re-exported)


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
    check_str("name", name, fix=f"pass a task name ({', '.join(names())}) or a .jsonl/.csv file")
    check_int("n", n, min=1, fix="ask for at least one sample")
    check_int("seed", seed, min=0)
    p = str(name)
    if p.endswith(".jsonl") or p.endswith(".csv"):
        from probes.tasks.files import load_jsonl, load_liars_bench_csv
        return load_jsonl(p, **kwargs) if p.endswith(".jsonl") else load_liars_bench_csv(p, **kwargs)
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown task {name!r}; built-in tasks are {sorted(reg)}, or pass a .jsonl/.csv path")
    return reg[name](n=n, seed=seed, **kwargs)


__all__ = ["Task", "load", "names"]
