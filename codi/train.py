"""Train a CODIModel: accelerate, AdamW, warmup + cosine, clipping, accumulation, checkpoints, exact resume, and a
divergence guard that rolls back and lowers the learning rate.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig(base_model="tiny-gpt2", num_latents=2, lora_r=4))
    >>> out = tempfile.mkdtemp() + "/codi-tiny"          # a real run: base_model="smollm2-135m", out="runs/..."
    >>> rec = codi.train(cm, codi.data.arithmetic(32), out=out, max_steps=4, batch_size=8, progress=False)
    >>> rec.step, rec.finished, sorted(rec.losses[-1])
    (4, True, ['distill', 'grad_norm', 'latent_distill', 'lr', 'step', 'student_ce', 'teacher_ce', 'total'])
    >>> codi.CODIModel.from_pretrained(out).config == cm.config
    True

On disk: `out/` is the final model (`CODIModel.from_pretrained(out)`, with `train_record.json` and
`train_config.json` inside); `<out>-train/` holds the run while it trains: `checkpoints/step_NNNNNN/` (see
`codi.train_state`) and a live `train_record.json`.

Scaling out: the same script under `accelerate launch --num_processes N` splits every optimizer step's global batch
(`batch_size` problems) across processes; gradients are averaged explicitly across processes, so the loss curve
matches one process with the same global batch. `micro_batch_size` (problems per process per forward) sets the
gradient accumulation: `batch_size = micro_batch_size * processes * accumulation`.

Learning rate: when `lr` is None it follows `default_lr(n_params)` = 3e-3 * sqrt(124M / n_params), clipped to
[1e-5, 3e-3]: the official CODI 3e-3 for GPT-2 124M, ~1e-3 at 1B (the official Llama-1B run used 8e-4),
~6e-4 at 3B (where 3e-3 diverged).

Divergence guard: a NaN/inf loss or gradient norm, or an exponentially smoothed loss that stays above
`(1 + guard_rise) * best smoothed loss` for `guard_patience` steps, restores the last good checkpoint (parameters,
optimizer, RNG, step), multiplies the learning rate by `rollback_lr_factor` and continues; every rollback is an
entry in `train_record.json["events"]`. A checkpoint counts as good when it was written while the smoothed loss was
not rising; if training diverges again before the next checkpoint, that checkpoint is marked bad and the next
rollback goes further back (the step-0 checkpoint and the two newest good ones are never deleted). After
`max_rollbacks` it stops with an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from argcheck import BadArgument
from codi import train_state as ts
from codi.processes import end_group_at_exit
from codi.train_config import TrainConfig, TrainRecord, check_model, check_problems, check_run
from codi.train_state import train_dir
from formats import atomic_write_json

__all__ = ["train", "train_dir", "check_run", "TrainConfig", "TrainRecord", "default_lr", "lr_factor", "LOSS_KEYS"]

RECORD = "train_record.json"
TRAIN_CONFIG = "train_config.json"
LOSS_KEYS = ("total", "teacher_ce", "student_ce", "distill", "latent_distill")


def default_lr(n_params: int) -> float:
    """3e-3 * sqrt(124e6 / n_params) clipped to [1e-5, 3e-3] (see module docstring).

        >>> round(default_lr(124_000_000), 6), round(default_lr(3_200_000_000), 6)
        (0.003, 0.000591)
    """
    return float(min(3e-3, max(1e-5, 3e-3 * math.sqrt(124e6 / max(n_params, 1)))))


def lr_factor(step: int, total: int, warmup_frac: float, min_frac: float) -> float:
    """Linear warmup over ceil(warmup_frac * total) steps, then cosine from 1 to `min_frac`.

        >>> [round(lr_factor(step, 100, warmup_frac=0.05, min_frac=0.1), 3) for step in (0, 4, 5, 52, 99)]
        [0.2, 1.0, 1.0, 0.557, 0.1]
    """
    warm = math.ceil(warmup_frac * total)
    if step < warm:
        return (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))


def _trainable(cm) -> dict[str, torch.nn.Parameter]:
    params = {n: p for n, p in cm.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("the model has no trainable parameters; build it with CODIModel.from_config")
    return params


def _step_indices(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Problem indices of optimizer step `step`: a fresh seeded permutation per epoch, last partial batch dropped."""
    per_epoch = n // batch
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[k * batch:(k + 1) * batch].tolist()


def _to_device(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return type(batch)(**{f.name: _to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch)})
    return batch


class _Guard:
    """Smoothed-loss divergence detector; its state is part of every checkpoint."""

    def __init__(self, cfg: TrainConfig, state: dict | None = None):
        self.cfg = cfg
        s = state or {}
        self.ema, self.best, self.bad, self.seen = s.get("ema"), s.get("best"), s.get("bad", 0), s.get("seen", 0)

    def state(self) -> dict:
        return {"ema": self.ema, "best": self.best, "bad": self.bad, "seen": self.seen}

    def update(self, loss: float) -> str | None:
        """Feed one finite step loss; return a reason string when the run counts as diverged."""
        b = self.cfg.guard_smoothing
        self.ema = loss if self.ema is None else b * self.ema + (1 - b) * loss
        self.seen += 1
        self.best = self.ema if self.best is None else min(self.best, self.ema)
        if self.seen >= self.cfg.guard_min_steps and self.ema > (1 + self.cfg.guard_rise) * self.best:
            self.bad += 1
        else:
            self.bad = 0
        if self.cfg.guard and self.bad >= self.cfg.guard_patience:
            return (f"smoothed loss {self.ema:.4g} above {1 + self.cfg.guard_rise:.2f} x best {self.best:.4g} for "
                    f"{self.bad} steps")
        return None


def train(cm, problems: list, out: str | Path, *, config: TrainConfig | None = None, resume: bool = False,
          **overrides) -> TrainRecord:
    """Train `cm` (a CODIModel) on `problems` (codi.data.Problem list); write checkpoints and the final model to
    `out`. Keyword overrides set TrainConfig fields (`lr=`, `epochs=`, `max_steps=`, `batch_size=`, ...).

    Every argument is checked before anything is written (`argcheck.BadArgument` names it). `resume=True`
    continues from the newest intact checkpoint in `<out>-train` (exactly: the next losses equal an uninterrupted
    run's; a damaged newest checkpoint is named, set aside and the one before it used); with nothing to resume it
    is an error, as is a run that already has checkpoints without `resume=True`, or a non-empty `out`. A run that
    fails before its first optimizer step removes the run folder it created, so the corrected rerun starts clean.

        >>> import codi, tempfile
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
        >>> out = tempfile.mkdtemp() + "/t"
        >>> rec = train(cm, codi.data.arithmetic(16), out, max_steps=2, batch_size=4, progress=False)
        >>> rec.step, len(rec.losses), rec.total_steps, sorted(p.name for p in train_dir(out).iterdir())
        (2, 2, 2, ['checkpoints', 'train_record.json'])
        >>> train(cm, codi.data.arithmetic(16), out, max_steps=2, batch_size=4, progress=False)
        Traceback (most recent call last):
        ...
        argcheck.errors.BadArgument: resume=False: ...-train already holds checkpoints (step_000002). Fix: pass ...
    """
    if config is not None and not isinstance(config, TrainConfig):
        raise BadArgument("config", config, "must be a TrainConfig or None", "pass config=TrainConfig(...) or "
                          "keyword overrides such as max_steps=100")
    cfg = TrainConfig.from_dict({**(config.to_dict() if config else {}), **overrides})
    check_model(cm)
    check_problems(problems, cfg.batch_size)
    existing = check_run(out, resume)
    out, run_dir = Path(out), train_dir(out)
    created = not run_dir.exists()
    run = _Run(cm, problems, out, cfg)
    try:
        if existing:
            run.resume_from(existing)
        else:
            torch.manual_seed(cfg.seed * 1000 + run.rank)  # dropout streams; restored exactly from checkpoints
            run.save(good=True)
        return run.loop()
    except Exception:
        if created and run.rec.step == 0 and not run.rec.events and run.acc.is_main_process:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing learned yet: leave no folder behind
        raise


class _Run:
    """One training run: the state that checkpoints hold, and the steps that change it."""

    def __init__(self, cm, problems: list, out: Path, cfg: TrainConfig):
        from accelerate import Accelerator

        mp = cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        self.acc = acc = Accelerator(mixed_precision=mp)
        end_group_at_exit()
        self.world, self.rank = acc.num_processes, acc.process_index
        self.micro = cfg.micro_batch_size or max(1, cfg.batch_size // self.world)
        if cfg.batch_size % (self.micro * self.world):
            raise BadArgument("micro_batch_size", self.micro, f"batch_size {cfg.batch_size} is not a multiple of "
                              f"micro_batch_size {self.micro} x {self.world} processes",
                              "use batch_size = micro_batch_size x processes x accumulation")
        self.accum = cfg.batch_size // (self.micro * self.world)
        self.total = cfg.max_steps or max(1, math.ceil(cfg.epochs * (len(problems) // cfg.batch_size)))
        self.cm, self.problems, self.out, self.cfg, self.run_dir = cm, problems, out, cfg, train_dir(out)
        if hasattr(cm, "to"):
            cm.to(acc.device)
        self.params = _trainable(cm)
        n_params = sum(p.numel() for p in cm.parameters())
        self.base_lr = cfg.lr if cfg.lr is not None else default_lr(n_params)
        groups = [{"params": [p for p in self.params.values() if p.ndim >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in self.params.values() if p.ndim < 2], "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=self.base_lr, betas=cfg.betas, eps=cfg.eps)
        self.codi_cfg = cm.config.to_dict() if hasattr(cm.config, "to_dict") else dict(vars(cm.config))
        self.rec = TrainRecord(config=cfg.to_dict(), codi_config=self.codi_cfg, lr=self.base_lr, n_params=n_params,
                               world_size=self.world, grad_accum=self.accum, total_steps=self.total)
        self.lr_scale, self.guard, self.injected = 1.0, _Guard(cfg), set()
        self.retry_of: Path | None = None  # checkpoint of the last rollback, until a new checkpoint is written
        self.t_start, self.wall_before = time.time(), 0.0

    def wall(self) -> float:
        return self.wall_before + time.time() - self.t_start

    # ------------------------------------------------------------------ checkpoints
    def restore(self, ckpt: Path) -> dict:
        st = ts.load_checkpoint(ckpt, params=self.params, optimizer=self.opt, rank=self.rank)
        self.rec.step, self.rec.losses = st["step"], st["losses"]
        self.lr_scale, self.guard, self.injected = st["lr_scale"], _Guard(self.cfg, st["guard"]), set(st["injected"])
        return st

    def resume_from(self, ckpts: list[Path]) -> None:
        """Continue from the newest intact checkpoint; a damaged one is named, set aside, and the one before used."""
        damaged = []
        for ckpt in reversed(ckpts):
            try:
                ts.verify_checkpoint(ckpt)
            except ValueError as err:  # every process finds the same damage; the main one sets it aside
                aside = ts.set_aside(ckpt) if self.acc.is_main_process else ckpt.with_name(f"{ckpt.name}.damaged")
                damaged.append({"kind": "damaged_checkpoint", "checkpoint": ckpt.name, "moved_to": aside.name,
                                "error": str(err)})
                if self.acc.is_main_process:
                    print(f"codi train: checkpoint {ckpt} is damaged ({err}); moved it to {aside.name} and falling "
                          f"back to the checkpoint before it", file=sys.stderr, flush=True)
                continue
            _check_same_run(ckpt, self.cfg, self.codi_cfg)
            st = self.restore(ckpt)
            self.rec.events, self.wall_before = st["events"] + damaged, st["wall_s"]
            self.rec.events.append({"kind": "resume", "step": self.rec.step, "checkpoint": ckpt.name})
            return
        raise ValueError(f"every checkpoint in {self.run_dir / ts.CKPT_DIR} is damaged (set aside: "
                         f"{[d['moved_to'] for d in damaged]}); start a new run in a new output folder")

    def save(self, good: bool) -> None:
        acc, rec = self.acc, self.rec
        final = ts.checkpoint_dir(self.run_dir, rec.step)
        tmp = ts.temporary_dir(final, clean=acc.is_main_process)  # one name on every process; stale ones removed
        acc.wait_for_everyone()
        state = {"step": rec.step, "lr_scale": self.lr_scale, "guard": self.guard.state(),
                 "injected": sorted(self.injected), "good": good, "losses": rec.losses, "events": rec.events,
                 "wall_s": self.wall(), "train_config": self.cfg.to_dict(), "codi_config": self.codi_cfg,
                 "world_size": self.world}
        ts.write_checkpoint_tmp(tmp, cm=self.cm, trainable=self.params, optimizer=self.opt, state=state,
                                rank=self.rank, is_main=acc.is_main_process)
        acc.wait_for_everyone()
        if acc.is_main_process:
            good_ones = [c for c in ts.list_checkpoints(self.run_dir) if ts.read_state(c)["good"]]
            ts.finish_checkpoint(tmp, final, self.cfg.keep_checkpoints, protect=good_ones[:1] + good_ones[-2:])
            _write_record(self.run_dir, rec, self.wall())
        acc.wait_for_everyone()
        self.retry_of = None

    def last_good(self) -> Path:
        ckpts = ts.list_checkpoints(self.run_dir)
        good = [c for c in ckpts if ts.read_state(c)["good"]]
        return good[-1] if good else ckpts[0]  # all marked bad: start over from step 0

    # ------------------------------------------------------------------ one optimizer step
    def grads_and_losses(self) -> dict[str, float]:
        """Forward + backward over this process's micro-batches; gradients averaged over processes."""
        cfg, rec, acc, cm = self.cfg, self.rec, self.acc, self.cm
        idx = _step_indices(len(self.problems), cfg.batch_size, rec.step, cfg.seed)
        sums = torch.zeros(len(LOSS_KEYS), dtype=torch.float64)
        inject = rec.step + 1 in cfg.inject_nan_steps and rec.step + 1 not in self.injected
        for m in range(self.accum):
            start = (m * self.world + self.rank) * self.micro
            batch = _to_device(cm.make_batch([self.problems[i] for i in idx[start:start + self.micro]]), acc.device)
            with acc.autocast():
                parts = cm.loss(batch)
            loss = parts["total"] * float("nan") if inject else parts["total"]
            (loss / self.accum).backward()
            sums += torch.tensor([float(loss.detach())] + [float(parts[k].detach()) for k in LOSS_KEYS[1:]],
                                 dtype=torch.float64) / self.accum
        if self.world > 1:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params.values()]
            flat = acc.reduce(torch.cat([g.reshape(-1).float() for g in grads] + [sums.float().to(acc.device)]),
                              reduction="mean")
            sums = flat[-len(LOSS_KEYS):].double().cpu()
            off = 0
            for p, g in zip(self.params.values(), grads):
                p.grad = flat[off:off + g.numel()].view_as(p).to(p.dtype)
                off += g.numel()
        return dict(zip(LOSS_KEYS, sums.tolist()))

    def rollback(self, reason: str, loss: float) -> None:
        """Restore the last good checkpoint and lower the learning rate (see the module docstring)."""
        acc, rec, cfg = self.acc, self.rec, self.cfg
        self.opt.zero_grad(set_to_none=True)
        if self.retry_of is not None and acc.is_main_process:
            ts.mark_bad(self.retry_of)  # diverged again before the next checkpoint: roll back further
        acc.wait_for_everyone()
        target = self.last_good()
        discarded = [e["total"] for e in rec.losses if e["step"] > ts.read_state(target)["step"]] + [loss]
        n_roll = sum(e["kind"] == "rollback" for e in rec.events) + 1
        bad_step = rec.step + 1
        if n_roll > cfg.max_rollbacks:
            if acc.is_main_process:
                _write_record(self.run_dir, rec, self.wall())
            raise RuntimeError(f"training diverged {n_roll} times (last: {reason} at step {bad_step}); lower lr "
                               f"(now {self.base_lr * self.lr_scale:.3g}) or raise batch_size and start again")
        scale_now = self.lr_scale
        self.restore(target)
        self.retry_of = target
        self.lr_scale = scale_now * cfg.rollback_lr_factor
        self.injected |= {bad_step} & set(cfg.inject_nan_steps)
        rec.events.append({"kind": "rollback", "step": bad_step, "reason": reason, "to_step": rec.step,
                           "lr_scale": self.lr_scale, "lr": self.base_lr * self.lr_scale,
                           "discarded_losses": [x if math.isfinite(x) else str(x) for x in discarded]})
        if acc.is_main_process:
            tqdm.write(f"codi train: divergence at step {bad_step} ({reason}); rolled back to step {rec.step}, "
                       f"lr x{self.lr_scale:.3g}")

    def loop(self) -> TrainRecord:
        cfg, rec, acc, cm = self.cfg, self.rec, self.acc, self.cm
        if hasattr(cm, "train"):
            cm.train()
        bar = tqdm(total=self.total, initial=rec.step, desc="codi train", dynamic_ncols=True,
                   disable=not (cfg.progress and acc.is_main_process))
        while rec.step < self.total:
            losses = self.grads_and_losses()
            gnorm = float(torch.nn.utils.clip_grad_norm_(list(self.params.values()), cfg.max_grad_norm))
            if not (math.isfinite(losses["total"]) and math.isfinite(gnorm)):
                reason = f"non-finite loss {losses['total']} / grad norm {gnorm}"
            else:
                reason = self.guard.update(losses["total"])
            if reason is not None and cfg.guard:
                self.rollback(reason, losses["total"])
                bar.n = rec.step
                bar.refresh()
                continue
            lr = self.base_lr * self.lr_scale * lr_factor(rec.step, self.total, cfg.warmup_frac, cfg.min_lr_frac)
            for g in self.opt.param_groups:
                g["lr"] = lr
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            rec.step += 1
            rec.losses.append({"step": rec.step, **{k: v if math.isfinite(v) else str(v) for k, v in losses.items()},
                               "lr": lr, "grad_norm": gnorm if math.isfinite(gnorm) else str(gnorm)})
            bar.update(1)
            bar.set_postfix(loss=f"{losses['total']:.3f}", t_ce=f"{losses['teacher_ce']:.3f}",
                            s_ce=f"{losses['student_ce']:.3f}", dist=f"{losses['distill']:.3f}", lr=f"{lr:.2g}")
            if rec.step % cfg.checkpoint_every == 0 or rec.step == self.total:
                self.save(good=self.guard.bad == 0)
        bar.close()
        rec.finished = True
        if hasattr(cm, "eval"):
            cm.eval()
        if acc.is_main_process:
            _write_record(self.run_dir, rec, self.wall())
            cm.save_pretrained(self.out, extra_files={RECORD: json.dumps(rec.to_dict(), indent=1),
                                                      TRAIN_CONFIG: json.dumps(cfg.to_dict(), indent=1)})
        acc.wait_for_everyone()
        return rec


def _write_record(out: Path, rec: TrainRecord, wall_s: float) -> None:
    rec.wall_s = wall_s
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RECORD, rec.to_dict())


def _check_same_run(ckpt: Path, cfg: TrainConfig, codi_cfg: dict) -> None:
    st = ts.read_state(ckpt)
    skip = {"progress", "inject_nan_steps", "max_steps", "epochs", "checkpoint_every", "keep_checkpoints"}
    diff = {k: (st["train_config"].get(k), v) for k, v in cfg.to_dict().items()
            if k not in skip and st["train_config"].get(k) != v}
    if diff:
        raise ValueError(f"cannot resume from {ckpt}: training settings differ from the checkpoint's "
                         f"(field: (checkpoint, now)) {diff}; resume with the original settings")
    if st["codi_config"] != codi_cfg:
        keys = sorted(k for k in set(st["codi_config"]) | set(codi_cfg)
                      if st["codi_config"].get(k) != codi_cfg.get(k))
        raise ValueError(f"cannot resume from {ckpt}: the CODIConfig differs in {keys}; build the model with the "
                         f"config of the run (see {ckpt}/model/codi_config.json)")
