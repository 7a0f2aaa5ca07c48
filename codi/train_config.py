"""`TrainConfig` (every setting of `codi.train`, checked when it is made), `TrainRecord` (what a run did) and the
checks of `codi.train`'s model, problems, output folder and resume flag.

    >>> from codi.train_config import TrainConfig
    >>> TrainConfig(max_steps=20, batch_size=8).batch_size
    8
    >>> TrainConfig(max_steps=-1)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: max_steps=-1: must be None or an integer >= 1. Fix: ...
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from argcheck import BadArgument, check_bool, check_choice, check_float, check_int, check_ints, check_out_folder
from codi.train_state import list_checkpoints, train_dir
from formats import atomic_write_text, read_json

__all__ = ["TrainConfig", "TrainRecord", "MIXED_PRECISION", "check_model", "check_problems", "check_run"]

MIXED_PRECISION = ("auto", "bf16", "no")


@dataclass
class TrainConfig:
    """Training settings; JSON round trip with `to_dict`/`from_dict`/`save`/`load`. Every field is checked when the
    config is made (`argcheck.BadArgument` names the field), so a bad value never starts a run.

    >>> cfg = TrainConfig(lr=1e-3, batch_size=4)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    lr: float | None = None            # None: default_lr(n_params)
    epochs: float = 1.0
    max_steps: int | None = None       # overrides epochs when set
    batch_size: int = 16               # problems per optimizer step, all processes together
    micro_batch_size: int | None = None  # problems per process per forward; None: batch_size // processes
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_frac: float = 0.03
    min_lr_frac: float = 0.0           # cosine decays to lr * min_lr_frac
    max_grad_norm: float = 2.0
    seed: int = 0
    checkpoint_every: int = 100        # optimizer steps; a step-0 checkpoint is always written
    keep_checkpoints: int = 2          # newest kept, plus the newest good one (0: keep all)
    mixed_precision: str = "auto"      # "auto" (bf16 on CUDA when supported), "bf16", "no"
    guard: bool = True
    guard_smoothing: float = 0.9       # EMA factor of the smoothed loss
    guard_rise: float = 0.5            # relative rise over the best smoothed loss that counts as divergence
    guard_patience: int = 10           # consecutive risen steps before a rollback
    guard_min_steps: int = 5           # no rise checks before this many steps
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 5
    inject_nan_steps: list[int] = field(default_factory=list)  # testing the guard: NaN loss once at these steps
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `argcheck.BadArgument` naming the first bad field (type or range), with a fix."""
        check_float("lr", self.lr, min=0, min_open=True, none_ok=True,
                    fix="use e.g. lr=1e-3, or None for the default that scales with model size")
        check_float("epochs", self.epochs, min=0, min_open=True, fix="use e.g. epochs=1, or set max_steps")
        check_int("max_steps", self.max_steps, min=1, none_ok=True,
                  fix="use max_steps=1 or more, or None to train for `epochs`")
        check_int("batch_size", self.batch_size, min=1, fix="use e.g. batch_size=16")
        check_int("micro_batch_size", self.micro_batch_size, min=1, max=self.batch_size, none_ok=True,
                  fix=f"use None or a divisor of batch_size ({self.batch_size})")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise BadArgument("betas", self.betas, "must be a pair (beta1, beta2)", "use betas=(0.9, 0.999)")
        for i, b in enumerate(self.betas):
            check_float(f"betas[{i}]", b, min=0, max=1, max_open=True, fix="use betas=(0.9, 0.999)")
        check_float("weight_decay", self.weight_decay, min=0)
        check_float("eps", self.eps, min=0, min_open=True, fix="use eps=1e-8")
        for name in ("warmup_frac", "min_lr_frac"):
            check_float(name, getattr(self, name), min=0, max=1)
        check_float("max_grad_norm", self.max_grad_norm, min=0, min_open=True, fix="use e.g. max_grad_norm=2.0")
        check_int("seed", self.seed, min=0)
        check_int("checkpoint_every", self.checkpoint_every, min=1, fix="use e.g. checkpoint_every=100")
        check_int("keep_checkpoints", self.keep_checkpoints, min=0, fix="use e.g. 2 (0 keeps every checkpoint)")
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        for name in ("guard", "progress"):
            check_bool(name, getattr(self, name))
        check_float("guard_smoothing", self.guard_smoothing, min=0, max=1, max_open=True)
        check_float("guard_rise", self.guard_rise, min=0, min_open=True)
        check_int("guard_patience", self.guard_patience, min=1)
        check_int("guard_min_steps", self.guard_min_steps, min=0)
        check_float("rollback_lr_factor", self.rollback_lr_factor, min=0, max=1, min_open=True)
        check_int("max_rollbacks", self.max_rollbacks, min=0)
        check_ints("inject_nan_steps", self.inject_nan_steps, min=1, nonempty=False)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise BadArgument("config", d, "must be a dict of TrainConfig fields", "pass e.g. {'max_steps': 100}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise BadArgument(unknown[0], d[unknown[0]], f"unknown TrainConfig field(s) {unknown}",
                              f"use one of {sorted(names)}")
        d = dict(d)
        if isinstance(d.get("betas"), list):
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_json(path))


@dataclass
class TrainRecord:
    """What happened in a run: `<out>-train/train_record.json` (live, at every checkpoint) and
    `<out>/train_record.json` (final).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(8), out, max_steps=2, batch_size=4, progress=False)
    >>> rec = TrainRecord.load(out)                          # the folder, or its train_record.json
    >>> rec.step, rec.finished, rec.total_steps, rec.world_size, len(rec.losses), rec.events
    (2, True, 2, 1, 2, [])
    """

    config: dict
    codi_config: dict
    lr: float
    n_params: int
    world_size: int
    grad_accum: int
    total_steps: int
    step: int = 0
    losses: list[dict] = field(default_factory=list)   # one entry per optimizer step of the kept trajectory
    events: list[dict] = field(default_factory=list)   # rollbacks, resumes
    wall_s: float = 0.0
    finished: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | Path) -> TrainRecord:
        p = Path(path)
        return cls(**read_json(p / "train_record.json" if p.is_dir() else p))


def check_model(cm) -> None:
    """`codi.train`'s model: anything with make_batch, loss, config and save_pretrained (a CODIModel).

    >>> check_model("tiny-gpt2")
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: cm='tiny-gpt2': must be a CODIModel (make_batch, loss, config, ...). Fix: build ...
    """
    if not all(hasattr(cm, a) for a in ("make_batch", "loss", "config", "save_pretrained")):
        raise BadArgument("cm", cm, "must be a CODIModel (make_batch, loss, config, save_pretrained)",
                          "build one with codi.CODIModel.from_config(codi.CODIConfig(base_model=...))")


def check_problems(problems, batch_size: int) -> None:
    """A non-empty list of problems (codi.data.Problem or dicts with question, cot, answer), at least one batch.

    >>> check_problems([dict(question="1+2?", cot="<<1+2=3>>", answer="3")] * 4, batch_size=4)
    >>> check_problems([dict(question="1+2?", answer="3")], batch_size=1)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: problems[0]={...}: must have string fields question, cot, answer (lacks ['cot']). ...
    """
    if isinstance(problems, (str, bytes, dict)) or not hasattr(problems, "__len__") or not len(problems):
        raise BadArgument("problems", problems, "must be a non-empty list of problems",
                          "pass e.g. codi.data.arithmetic(2000) or codi.data.load('train.jsonl')")
    for i, prob in enumerate(problems):
        get = prob.get if isinstance(prob, dict) else lambda k, prob=prob: getattr(prob, k, None)
        bad = [k for k in ("question", "cot", "answer") if not isinstance(get(k), str)]
        if bad:
            raise BadArgument(f"problems[{i}]", prob, f"must have string fields question, cot, answer (lacks {bad})",
                              "use codi.data.Problem or dicts in the GSM8k-Aug format")
    if len(problems) < batch_size:
        raise BadArgument("batch_size", batch_size, f"is more than the {len(problems)} problems given (one "
                          f"optimizer step needs a whole batch)", f"use batch_size <= {len(problems)} or more problems")


def check_run(out: str | Path, resume: bool) -> list[Path]:
    """The checks of `codi.train` on `out` and `resume` (also run by the CLI before it loads a model); returns the
    checkpoints to resume from.

        >>> check_run("runs/new-run", resume=False)                # a new run: nothing to resume, nothing written
        []
        >>> check_run("runs/new-run", resume=True)
        Traceback (most recent call last):
        ...
        argcheck.errors.BadArgument: resume=True: there is nothing to resume: runs/new-run-train holds no ...
    """
    check_bool("resume", resume)
    out = check_out_folder("out", out, fix="pass out='runs/name', a new folder for the trained model")
    run_dir = train_dir(out)
    existing = list_checkpoints(run_dir)
    if existing and not resume:
        raise BadArgument("resume", resume, f"{run_dir} already holds checkpoints ({existing[-1].name})",
                          "pass resume=True to continue that run, or choose a new output folder")
    if resume and not existing:
        raise BadArgument("resume", resume, f"there is nothing to resume: {run_dir} holds no checkpoint",
                          "drop resume=True to start a new run, or pass the out folder of the run")
    if out.exists() and any(out.iterdir()) and not (resume and existing):
        raise BadArgument("out", str(out), "already exists and is not empty; the trained model is written there "
                          "at the end", "choose a new output folder (or resume=True to continue a run)")
    return existing
