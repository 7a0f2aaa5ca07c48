"""Model organisms: tiny CODI models trained from scratch whose continuous thoughts do the work (positive controls).

    >>> import codi
    >>> "pointer3" in codi.organisms.available()
    True
    >>> cm, make = codi.organisms.load("pointer3")
    >>> p = make(1, seed=0)[0]
    >>> cm.generate([p.question], max_new_tokens=3).answers == [p.answer]
    True
    >>> clean, corrupt = codi.organisms.pairs("pointer3", 4, seed=0, step=1)
    >>> [c.values[0] != k.values[0] for c, k in zip(clean, corrupt)]
    [True, True, True, True]

Each shipped organism is a normal CODI folder (`finetune="full"`: it carries its whole base) under
`codi/organisms/pretrained/<name>/`, with `organism.json` (task, depth, recipe), `train_record.json` and
`ACCURACY.md`. `make(n, seed)` gives held-out problems of its task with `values` per step; `pairs(name, n, seed,
step)` gives (clean, corrupt) problems with the same mapping whose value after `step` differs (and with it the
answer), the input of a patching study.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from argcheck import check_choice, check_int
from codi.organisms.tasks import Task, modular_chain, pointer_chase
from formats import read_json

__all__ = ["available", "load", "pairs", "task_of", "folder", "pointer_chase", "modular_chain", "Task", "ROOT"]

ROOT = Path(__file__).parent / "pretrained"
META = "organism.json"


def available() -> list[str]:
    """Names of the shipped organisms (folders under codi/organisms/pretrained with an organism.json).

    >>> available()
    ['pointer2', 'pointer3', 'pointer4']
    """
    return sorted(p.parent.name for p in ROOT.glob(f"*/{META}"))


def folder(name: str) -> Path:
    """The shipped folder of organism `name` (an unknown name raises `argcheck.BadArgument` listing the shipped).

    >>> folder("pointer3").name
    'pointer3'
    """
    check_choice("name", name, available(), fix="train one with codi.organisms.train.train_organism")
    return ROOT / name


def task_of(name: str) -> Task:
    """The task (family and depth) organism `name` was trained on.

    >>> task_of("pointer3")
    Task(family='pointer', depth=3, nodes=8, names=12)
    """
    meta = read_json(folder(name) / META)
    t = meta["task"]
    return Task(t["family"], t["depth"], t["nodes"], t["names"])


def _make(task: Task, n: int, seed: int = 0):
    check_int("n", n, min=1, fix="ask for at least one problem")
    check_int("seed", seed, min=0)
    return task.make(n, seed=seed, split="test")


def load(name: str, device=None, dtype=None):
    """(CODIModel, make_problems): the organism and `make_problems(n, seed)` -> held-out problems with values.
    `device` / `dtype` as in `CODIModel.from_pretrained` (the default dtype is float32 on the CPU, bfloat16 on CUDA).

    >>> cm, make = load("pointer3")
    >>> cm.config.num_latents, cm.config.finetune, [p.id for p in make(2, seed=0)]
    (3, 'full', ['pointer3-s0-0', 'pointer3-s0-1'])
    """
    from codi.model import CODIModel

    cm = CODIModel.from_pretrained(folder(name), device=device, dtype=dtype)
    return cm, partial(_make, task_of(name))


def pairs(name: str, n: int, seed: int = 0, step: int = 1):
    """`n` (clean, corrupt) held-out problem pairs of organism `name`: the same question except the start, chosen so
    that the value after `step` (1-based) differs and so does the answer. Pointer tasks only need a new start node;
    modular tasks a new start value.

    >>> clean, corrupt = pairs("pointer3", 1, seed=0, step=2)
    >>> clean[0].question, clean[0].values
    ('6>9 11>2 12>1 9>7 5>6 1>5 2>12 7>11 | 5', [6, 9, 7])
    >>> corrupt[0].question, corrupt[0].values                     # same edges, new start: step 2 gives 2, not 9
    ('6>9 11>2 12>1 9>7 5>6 1>5 2>12 7>11 | 7', [11, 2, 12])
    """
    task = task_of(name)
    check_int("n", n, min=1, fix="ask for at least one pair")
    check_int("seed", seed, min=0)
    check_int("step", step, min=1, max=task.depth, fix=f"organism {name!r} has steps 1..{task.depth}")
    return task.pairs(n, seed=seed, step=step)
