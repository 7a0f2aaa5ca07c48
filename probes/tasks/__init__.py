"""Probing tasks: samples with text, label and group, generated offline from a seed, or read from files.

    >>> from probes import tasks
    >>> t = tasks.load("deception-arith", n=8, seed=0)      # 4 questions x {honest, lying}
    >>> t.samples[0]["label"], t.samples[0]["group"] == t.samples[1]["group"]
    (0, True)
    >>> len(t.texts), t.to_frame().shape[0]                  # prompts for interp.cache (also: t.prompts); pandas
    (8, 8)
    >>> tasks.names()
    ['deception-arith', 'instructed-facts', 'intermediate-values', 'roleplaying']

Files: `tasks.load("my.jsonl")` (one {"text", "label", "group", ...} per line) and
`tasks.load("liars.csv")` (Liars' Bench style CSV), see probes.tasks.files; the published deception layouts
(Apollo's roleplaying `dataset.yaml` and rollout `.json` files, Liars' Bench `.jsonl` / `.json` / `.parquet`, or
any of them with `layout=`), see probes.tasks.external.
"""

from __future__ import annotations

from typing import Any, Callable

from argcheck import check_int, check_str
from probes.tasks.task import REQUIRED, Task  # noqa: F401 (re-exported)


def _registry() -> dict[str, Callable[..., Task]]:
    from probes.tasks.arith import deception_arith, intermediate_values
    from probes.tasks.facts import instructed_facts
    from probes.tasks.roleplay import roleplaying
    return {"deception-arith": deception_arith, "instructed-facts": instructed_facts,
            "intermediate-values": intermediate_values, "roleplaying": roleplaying}


def names() -> list[str]:
    """Names of the built-in generated tasks.

    >>> names()
    ['deception-arith', 'instructed-facts', 'intermediate-values', 'roleplaying']
    """
    return sorted(_registry())


FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".yaml", ".yml", ".parquet")


def load(name: str, n: int = 200, seed: int = 0, layout: str | None = None, **kwargs: Any) -> Task:
    r"""A built-in task by name (n samples, deterministic in seed), or a file (`n`/`seed` unused): `.jsonl`, `.csv`,
    or a published deception layout (`layout=` one of probes.tasks.external.LAYOUTS, else read from the file).

    >>> load("deception-arith", n=400, seed=0, placement="response")   # control: instruction only in the response
    Task('deception-arith', 400 samples, 200 groups, labels {0: 200, 1: 200})
    >>> load("instructed-facts", n=200, facts_from=("capital", "element")).name
    'instructed-facts'
    >>> load("intermediate-values", n=300, step=1).samples[0]["label"] > 0
    True
    >>> load("roleplaying", n=120, seed=0)                             # characters with a reason to lie
    Task('roleplaying', 120 samples, 60 groups, labels {0: 60, 1: 60})
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "my_task.jsonl"
    >>> _ = p.write_text("\n".join(json.dumps({"text": t, "label": i % 2, "group": "q0"}) for i, t in enumerate("ab")))
    >>> load(str(p))                                                   # one {"text", "label", "group"} per line
    Task('my_task', 2 samples, 1 groups, labels {0: 1, 1: 1})
    >>> load(str(p), layout="liars-bench")                             # strictly in a layout: its columns or an error
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: path=...my_task.jsonl': the file lacks the column(s) ['messages', 'deceptive'] ...
    """
    check_str("name", name, fix=f"pass a task name ({', '.join(names())}) or a .jsonl/.csv file")
    check_int("n", n, min=1, fix="ask for at least one sample")
    check_int("seed", seed, min=0)
    p = str(name)
    if p.endswith(FILE_SUFFIXES) or layout is not None:
        from probes.tasks.external import load_file
        return load_file(p, layout=layout, **kwargs)
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown task {name!r}; built-in tasks are {sorted(reg)}, or pass a .jsonl/.csv path")
    return reg[name](n=n, seed=seed, **kwargs)


__all__ = ["Task", "load", "names"]
