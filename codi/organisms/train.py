"""Train one organism end to end on this CPU: base from scratch, CODI through `codi.train`, evaluation, folder.

    >>> from codi.organisms.train import OrganismSpec, train_organism
    >>> spec = OrganismSpec(family="pointer", depth=3)          # the shipped recipe: 3000 + 1500 steps
    >>> spec.task().name, spec.base.steps, spec.codi_steps
    ('pointer3', 3000, 1500)

`train_organism(spec, "runs/organism-pointer3")` trains it; its docstring runs a few-step version.

The folder written is a normal CODI checkpoint (`CODIModel.from_pretrained(out)`) plus `organism.json` (task,
recipe, base record, accuracy table) and `ACCURACY.md`. About 5 minutes on one CPU thread for depth 3.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from argcheck import BadArgument, check_choice, check_float, check_int, check_out_folder
from codi.organisms import META
from codi.organisms.base import BaseSpec, train_base
from codi.organisms.recipe import ablation_accuracy, codi_from_base
from codi.organisms.tasks import TASK_FAMILIES, Task
from formats import atomic_write_json, atomic_write_text, clean_temporaries, tmp_name

__all__ = ["OrganismSpec", "train_organism", "accuracy_table", "accuracy_markdown"]

ACCURACY = "ACCURACY.md"


@dataclass
class OrganismSpec:
    """What to train: task family and depth, the base, and the CODI stage.

    >>> OrganismSpec(family="modular", depth=2).task()
    Task(family='modular', depth=2, nodes=11, names=11)
    >>> OrganismSpec(family="maze")
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: family='maze': must be one of 'modular', 'pointer'.
    """

    family: str = "pointer"
    depth: int = 3
    base: BaseSpec = field(default_factory=BaseSpec)
    codi_steps: int = 1500
    codi_batch: int = 32
    codi_lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("family", self.family, sorted(TASK_FAMILIES))
        check_int("depth", self.depth, min=1, max=16)
        if not isinstance(self.base, BaseSpec):
            raise BadArgument("base", self.base, "must be a BaseSpec", "pass base=BaseSpec(...) or leave the default")
        check_int("codi_steps", self.codi_steps, min=1)
        check_int("codi_batch", self.codi_batch, min=1)
        check_float("codi_lr", self.codi_lr, min=0, min_open=True)
        check_int("seed", self.seed, min=0)

    def task(self) -> Task:
        return TASK_FAMILIES[self.family](self.depth)


def accuracy_table(cm, task: Task, n: int = 500, seed: int = 123) -> dict:
    """Held-out accuracy: direct, written steps, CODI, CODI with thoughts zeroed / mean / random / swapped, and
    CODI with only the first j thoughts (j = 0..k). Chance = 1 / task.n_values.

    >>> import codi
    >>> cm, _ = codi.organisms.load("pointer3")
    >>> t = accuracy_table(cm, codi.organisms.task_of("pointer3"), n=20)         # shipped: n=500
    >>> t["chance"], t["written"], t["codi"], t["codi_zero"], t["first_j"]
    (0.125, 1.0, 0.95, 0.3, [0.0, 0.0, 0.0, 0.95])
    """
    import codi

    test = task.make(n, seed=seed, split="test")
    res = codi.evaluate(cm, test, batch_size=250, modes=("no_cot", "cot"), progress=False, max_new_tokens=4,
                        cot_max_new_tokens=task.depth + 4)
    table = dict(n=n, chance=1 / task.n_values, direct=res["no_cot"]["accuracy"], written=res["cot"]["accuracy"])
    for kind in ("none", "zero", "mean", "random", "swap"):
        table["codi" if kind == "none" else f"codi_{kind}"] = ablation_accuracy(cm, test, kind)
    table["first_j"] = [ablation_accuracy(cm, test, "none", num_latents=j) for j in range(cm.config.num_latents + 1)]
    return table


def accuracy_markdown(name: str, table: dict, wall: dict) -> str:
    """The ACCURACY.md of an organism folder: its `accuracy_table` as a markdown table, with training times.

    >>> table = dict(n=500, chance=0.125, direct=0.1, written=1.0, codi=0.95, codi_zero=0.07, codi_mean=0.1,
    ...              codi_random=0.1, codi_swap=0.05, first_j=[0.1, 0.2])
    >>> text = accuracy_markdown("pointer3", table, dict(base_s=60, codi_s=300))
    >>> text.splitlines()[0], text.splitlines()[-1]
    ('# pointer3: held-out accuracy', '| CODI, only the first 1 thought(s) | 0.200 |')
    """
    rows = [("answer directly (no written steps)", table["direct"]), ("written steps", table["written"]),
            ("CODI (continuous thoughts)", table["codi"]), ("CODI, all thoughts zeroed", table["codi_zero"]),
            ("CODI, thoughts replaced by their mean", table["codi_mean"]),
            ("CODI, random thoughts of the same norm", table["codi_random"]),
            ("CODI, another problem's thoughts", table["codi_swap"])]
    rows += [(f"CODI, only the first {j} thought(s)", a) for j, a in enumerate(table["first_j"])]
    lines = [f"# {name}: held-out accuracy", "",
             f"{table['n']} held-out problems (never trained on), greedy; chance {table['chance']:.3f}. "
             f"Training wall time on this 2-core CPU (1 thread): base {wall['base_s']:.0f} s, CODI "
             f"{wall['codi_s']:.0f} s.", "", "| mode | accuracy |", "|---|---|"]
    lines += [f"| {what} | {acc:.3f} |" for what, acc in rows]
    return "\n".join(lines) + "\n"


def train_organism(spec: OrganismSpec, out: str | Path, progress=print) -> dict:
    """Train base and CODI stage, evaluate, and write the organism folder `out` (must not exist).

    A few steps of each stage here (about 3 s; the shipped pointer3 took 5 minutes on one thread):

    >>> import codi, tempfile
    >>> spec = OrganismSpec(depth=2, base=BaseSpec(layers=1, d_model=16, heads=2, mlp=32, steps=2, batch=8),
    ...                     codi_steps=1, codi_batch=4)
    >>> out = tempfile.mkdtemp() + "/pointer2-tiny"
    >>> meta = train_organism(spec, out, progress=lambda line: None)
    >>> meta["name"], meta["accuracy"]["n"], sorted(p.name for p in Path(out).glob("*.*"))
    ('pointer2', 500, ['ACCURACY.md', 'checksums.json', 'codi_config.json', 'organism.json', 'projection.safetensors',
     'special_tokens.safetensors', 'train_config.json', 'train_record.json'])
    >>> codi.CODIModel.from_pretrained(out).config.num_latents
    2
    """
    import codi

    if not isinstance(spec, OrganismSpec):
        raise BadArgument("spec", spec, "must be an OrganismSpec", "pass OrganismSpec(family='pointer', depth=3)")
    out = check_out_folder("out", out)
    if out.exists():
        raise FileExistsError(f"out={str(out)!r} exists; choose a new folder for the organism.")
    task = spec.task()
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out.parent, out.name)  # a killed earlier run of the same organism
    torch.manual_seed(spec.seed)
    base, tok, base_rec = train_base(task, spec.base, progress=progress)
    work = tmp_name(out)
    work.mkdir()
    try:
        base.save_pretrained(work / "base")
        tok.save_pretrained(work / "base")
        cm = codi_from_base(task, work / "base", all_steps=spec.base.all_steps, seed=spec.seed)
        t0 = time.time()
        problems = task.make(spec.codi_steps * spec.codi_batch, seed=spec.seed + 1, split="train")
        progress(f"CODI stage: {spec.codi_steps} steps x {spec.codi_batch} problems")
        rec = codi.train(cm, problems, work / "codi", max_steps=spec.codi_steps, batch_size=spec.codi_batch,
                         lr=spec.codi_lr, checkpoint_every=10**9, guard=False, warmup_frac=0.05, progress=True)
        codi_s = time.time() - t0
        progress(f"CODI stage done in {codi_s:.0f} s; last loss {rec.losses[-1]}")
        table = accuracy_table(cm, task)
        wall = dict(base_s=base_rec["wall_s"], codi_s=round(codi_s, 1))
        meta = dict(name=task.name, task=dict(family=task.family, depth=task.depth, nodes=task.nodes,
                                              names=task.names),
                    spec=dict(asdict(spec), base=spec.base.to_dict()), base_record=base_rec, wall=wall,
                    accuracy=table, torch_threads=torch.get_num_threads())
        final = work / "codi"
        atomic_write_json(final / META, meta)
        atomic_write_text(final / ACCURACY, accuracy_markdown(task.name, table, wall))
        os.replace(final, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"organism {task.name} written to {out}: {json.dumps(table)}")
    return meta
