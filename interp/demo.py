"""`codi-lens demo`: the whole study on one CODI model, end to end, with one self-contained report.

    >>> from interp.demo import run_demo
    >>> res = run_demo("smollm2-135m", out="runs/demo", quick=True)       # doctest: +SKIP
    >>> res.report, res.summary["deception"]["best_response"]["auroc"]     # doctest: +SKIP

Stages (each prints a line with the elapsed time; long ones show a tqdm bar):
1. a CODI model on the base: `--checkpoint DIR`, else the shipped `codi/pretrained/<model>-arith`, else a
   short `codi.train` run on `codi.data.arithmetic` (kept in `<out>/codi-model`, reused by the next run);
2. accuracy of CODI vs no reasoning vs written reasoning on held-out problems (`codi.evaluate`);
3. `deception-arith` (the instruction before the question, so the thoughts can depend on it) cached over the
   question tail, <bot>, every continuous thought, <eot> and the response tokens (`interp.cache`), and a
   logistic probe sweep with its checks (`probes.sweep`); in full size also the control where the instruction
   is only in the response (thoughts cannot depend on it: their probes must sit at chance);
4. `intermediate-values` (3-step problems) cached the same way; ridge probes for the value of each step and a
   logistic probe for "step-1 value above the median";
5. ablation of each continuous thought at the input (`interp.patching.ablate`, zero and mean);
6. the logit lens of the thoughts (`interp.lens.logit_lens`);
7. `report.html` (`viz.report`) plus `summary.json`; every probe grid is saved under `<out>/grids/`.

Sizes: `DemoSize.full()` (about 15 minutes on a 2-core CPU with a shipped checkpoint) and `DemoSize.quick()`
(CI, a couple of minutes). Everything is deterministic in the seeds below; caches are streamed to
`<out>/cache-*` and reopened (not recomputed) when the demo runs again with the same model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interp.demo_report import _fmt_cell, final_summary, write_report

__all__ = [
    "DemoSize",
    "DemoResult",
    "run_demo",
    "get_codi_model",
    "shipped_checkpoint",
    "CACHE_POSITIONS",
    "best_cells",
    "layer_subset",
]

# question tail, <bot>, all thoughts, <eot>, all response tokens (labels of interp/positions.py)
CACHE_POSITIONS = ["q[-4]", "q[-3]", "q[-2]", "q[-1]", "bot", "latents", "eot", "response"]
SEEDS = {"train": 0, "eval": 7, "deception": 1, "values": 2}  # distinct generator seeds: no shared problems


@dataclass
class DemoSize:
    """How big each stage is. `full()` is the README's run, `quick()` the CI run."""

    train_steps: int = 16  # used only when no checkpoint is given or shipped
    train_batch: int = 4
    n_train: int = 2000  # generated training problems
    n_eval: int = 48  # held-out problems for the accuracy table (each mode)
    cot_tokens: int = 64  # written-reasoning budget
    n_deception: int = 120  # samples (= 2 x questions)
    n_values: int = 96
    n_ablate: int = 24
    layer_stride: int = 2  # cache every layer_stride-th layer (0 and n_layers always)
    permutations: int = 10  # group-level label shuffles per probe cell (p-values; >= 10 widens the CIs)
    folds: int = 5
    Cs: tuple[float, ...] = (
        1e-3,
        1e-1,
        10.0,
    )  # logistic C grid for the nested CV (3 values: 2.5x faster than 6)
    control: bool = True  # also the placement="response" control of deception-arith
    ablate_modes: tuple[str, ...] = ("zero", "mean")
    batch_size: int = 16

    @classmethod
    def full(cls) -> DemoSize:
        return cls()

    @classmethod
    def quick(cls) -> DemoSize:
        return cls(
            train_steps=1,
            train_batch=2,
            n_train=64,
            n_eval=8,
            cot_tokens=40,
            n_deception=48,
            n_values=32,
            n_ablate=6,
            layer_stride=6,
            permutations=10,
            folds=4,
            control=False,
            ablate_modes=("zero",),
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ablate_modes"], d["Cs"] = list(self.ablate_modes), list(self.Cs)
        return d


@dataclass
class DemoResult:
    """What `run_demo` made: the report path, the key numbers (`<out>/summary.json`), the wall time."""

    report: Path
    summary: dict
    seconds: float
    grids: dict = field(default_factory=dict)


class _Stages:
    """Stage lines: `[demo 3/7 +1m05s] caching deception-arith ...`."""

    def __init__(self, total: int, verbose: bool):
        self.t0, self.total, self.i, self.verbose = time.perf_counter(), total, 0, verbose
        self.times: dict[str, float] = {}
        self._name, self._start = None, self.t0

    def elapsed(self) -> str:
        s = time.perf_counter() - self.t0
        return f"{int(s // 60)}m{s % 60:04.1f}s"

    def start(self, name: str, what: str) -> None:
        self.done()
        self.i += 1
        self._name, self._start = name, time.perf_counter()
        self.say(f"[demo {self.i}/{self.total} +{self.elapsed()}] {what}")

    def done(self) -> None:
        if self._name is not None:
            self.times[self._name] = round(time.perf_counter() - self._start, 1)
        self._name = None

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)


# ------------------------------------------------------------------------------------------------ the model
def shipped_checkpoint(model: str) -> Path | None:
    """`codi/pretrained/<model>-arith` when the project ships a trained adapter for this base, else None."""
    import codi

    folder = Path(codi.__file__).parent / "pretrained" / f"{model}-arith"
    return folder if (folder / "codi_config.json").exists() else None


def get_codi_model(
    model: str, out: Path, checkpoint: str | None, size: DemoSize, say=print
) -> tuple[Any, str]:
    """(CODIModel, how it was obtained): --checkpoint, the shipped one, an earlier run's, or trained now."""
    from codi import CODIConfig, CODIModel, data, train
    from codi.train import TrainRecord

    if checkpoint is not None:
        folder = Path(checkpoint).expanduser()
        if not (folder / "codi_config.json").exists():
            raise FileNotFoundError(
                f"--checkpoint {folder}: no codi_config.json there; pass a folder written by "
                f"`codi-lens train` / CODIModel.save_pretrained"
            )
        return CODIModel.from_pretrained(folder).eval(), f"checkpoint {folder}"
    shipped = shipped_checkpoint(model)
    if shipped is not None:
        return CODIModel.from_pretrained(shipped).eval(), f"shipped checkpoint {shipped}"
    folder = out / "codi-model"
    cfg = CODIConfig(base_model=model, num_latents=6, lora_r=32, lora_alpha=8.0)
    if size.train_steps <= 0:
        return CODIModel.from_config(cfg).eval(), "untrained (fresh LoRA + projection, 0 training steps)"
    if (folder / "codi_config.json").exists():
        rec = TrainRecord.load(folder)
        if rec.step == size.train_steps and rec.finished:
            return CODIModel.from_pretrained(
                folder
            ).eval(), f"trained {rec.step} steps by an earlier demo run"
        raise ValueError(
            f"{folder} holds a model trained for {rec.step} steps, not {size.train_steps}; pass "
            f"--train-steps {rec.step} to reuse it, or another --out"
        )
    problems = data.arithmetic(size.n_train, steps=(2, 3), seed=SEEDS["train"])
    say(
        f"  no checkpoint given or shipped: training {size.train_steps} steps x batch {size.train_batch} "
        f"(a real run: `codi-lens train --base {model} --out DIR`, then `codi-lens demo --checkpoint DIR`)"
    )
    cm = CODIModel.from_config(cfg)
    train(
        cm,
        problems,
        folder,
        max_steps=size.train_steps,
        batch_size=size.train_batch,
        checkpoint_every=max(size.train_steps, 1),
    )
    return CODIModel.from_pretrained(folder).eval(), f"trained {size.train_steps} steps now"


def _eval_problems(n: int, exclude: set[str]) -> list:
    from codi import data

    probs = [
        p for p in data.arithmetic(n + 32, steps=(2, 3), seed=SEEDS["eval"]) if p.question not in exclude
    ]
    return probs[:n]


# ------------------------------------------------------------------------------------------------ numbers
def _cell(grid, layer: int, pos: str, metric: str = "auroc") -> dict:
    out = {"layer": int(layer), "position": pos, metric: grid.sel(metric, layer, pos)}
    for k in (f"{metric}_lo", f"{metric}_hi", "p_value"):
        if k in grid.metrics:
            out[k] = grid.sel(k, layer, pos)
    return out


def best_cells(grid, metric: str = "auroc") -> dict:
    """{"best_latent", "best_response", "best_question", "best": {...}} cells of a grid."""
    kinds = {
        "latent": lambda p: p.startswith("latent_"),
        "response": lambda p: p.startswith("resp_"),
        "question": lambda p: p.startswith("q"),
    }
    out = {}
    for kind, test in kinds.items():
        pos = [p for p in grid.positions if test(p)]
        if pos and np.isfinite(grid.sel(metric)[:, [grid.positions.index(p) for p in pos]]).any():
            out[f"best_{kind}"] = _cell(grid, *grid.best(metric, positions=pos), metric)
    out["best"] = _cell(grid, *grid.best(metric), metric)
    return out


# ---------------------------------------------------------------------------------------------- the pipeline
def layer_subset(n_layers: int, stride: int) -> list[int]:
    """Every `stride`-th layer of 0..n_layers, always including the last."""
    return sorted(set(range(0, n_layers + 1, max(stride, 1))) | {n_layers})


def _cache(cm, task, layers: list[int], size: DemoSize, folder: Path, verbose: bool):
    import interp

    return interp.cache(cm, task, layers=layers, positions=CACHE_POSITIONS, batch_size=size.batch_size, out=folder,
                        progress=verbose)


def _probe(cache, target: str, method: str, size: DemoSize, name: str, out: Path, say) -> Any:
    import probes

    grid = probes.sweep(
        cache,
        target=target,
        method=method,
        folds=size.folds,
        n_permutations=size.permutations,
        n_bootstrap=500,
        seed=0,
        chunk=32,
        Cs=size.Cs if method == "logreg" else None,
    )
    grid.config["demo_name"] = name
    grid.save(out / "grids" / name)
    errors = [w for w in grid.warnings if w.severity == "error"]
    say(
        f"  {name}: {len(grid.layers)} layers x {len(grid.positions)} positions; checks: "
        f"{len(grid.warnings)} finding(s){f', {len(errors)} error(s)' if errors else ''}"
    )
    return grid


def run_demo(
    model: str = "smollm2-135m",
    out: str | Path = "runs/demo",
    quick: bool = False,
    checkpoint: str | None = None,
    size: DemoSize | None = None,
    verbose: bool = True,
    **overrides: Any,
) -> DemoResult:
    """Run the whole study (see the module docstring) and write `<out>/report.html` and `<out>/summary.json`.

    `size` defaults to `DemoSize.quick()` / `DemoSize.full()`; keyword `overrides` set its fields
    (e.g. `train_steps=0`, `n_deception=80`).

    >>> res = run_demo("smollm2-135m", out="runs/demo-quick", quick=True)      # doctest: +SKIP
    >>> print(res.summary["deception"]["best_response"])                      # doctest: +SKIP
    """
    import viz
    from codi import data, evaluate
    from interp import patching
    from interp.lens import logit_lens
    from probes import tasks

    size = dataclasses.replace(size or (DemoSize.quick() if quick else DemoSize.full()), **overrides)
    if size.n_deception < 8 or size.n_deception % 2:
        raise ValueError(f"n_deception={size.n_deception}: pass an even number >= 8 (honest/lying pairs)")
    if min(size.n_values, size.n_eval, size.n_ablate) < 2:
        raise ValueError("n_values, n_eval and n_ablate must each be at least 2")
    if "zero" not in size.ablate_modes:
        raise ValueError(
            f"ablate_modes={size.ablate_modes}: include 'zero' (the report draws it); add 'mean'/'resample'"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = _Stages(7, verbose)
    summary: dict[str, Any] = {"model": model, "quick": quick, "size": size.to_dict()}

    st.start("model", f"CODI model on {model}")
    cm, how = get_codi_model(model, out, checkpoint, size, say=st.say)
    summary["codi_model"] = how
    summary["base_model"] = cm.config.base_model
    layers = layer_subset(cm.n_layers, size.layer_stride)
    st.say(f"  {how}: {cm!r}; caching layers {layers[0]}..{layers[-1]} ({len(layers)} of {cm.n_layers + 1})")

    st.start(
        "accuracy", f"accuracy on {size.n_eval} held-out problems: CODI vs no reasoning vs written reasoning"
    )
    seen = {p.question for p in data.arithmetic(size.n_train, steps=(2, 3), seed=SEEDS["train"])}
    eval_probs = _eval_problems(max(size.n_eval, size.n_ablate), seen)
    acc = evaluate(
        cm,
        eval_probs[: size.n_eval],
        batch_size=size.batch_size,
        cot_max_new_tokens=size.cot_tokens,
        max_new_tokens=12,
        progress=verbose,
    )
    summary["accuracy"] = {m: {k: r[k] for k in ("accuracy", "correct", "n")} for m, r in acc.items()}
    st.say("  " + ", ".join(f"{m} {100 * r['accuracy']:.1f}%" for m, r in acc.items()))

    st.start(
        "deception",
        f"deception-arith: cache {size.n_deception} samples x thoughts and responses, probe sweep",
    )
    grids: dict[str, Any] = {}
    runs = [("deception", "before", "cache-deception")]
    if size.control:  # the seed study's design: the label lives only in the response
        runs.append(("deception_control", "response", "cache-deception-control"))
    for name, placement, folder in runs:
        task = tasks.load("deception-arith", n=size.n_deception, seed=SEEDS["deception"], placement=placement)
        c = _cache(cm, task, layers, size, out / folder, verbose)
        grids[name] = _probe(c, "label", "logreg", size, name, out, st.say)
        summary[name] = best_cells(grids[name])
    for k in ("deception", "deception_control"):
        if k in summary:
            st.say(
                f"  {k}: best latent {_fmt_cell(summary[k]['best_latent'])}; best response "
                f"{_fmt_cell(summary[k]['best_response'])}"
            )

    st.start("values", f"intermediate-values: cache {size.n_values} 3-step problems, ridge/logistic sweeps")
    iv = tasks.load("intermediate-values", n=size.n_values, seed=SEEDS["values"], steps=3, step=0)
    cv = _cache(cm, iv, layers, size, out / "cache-values", verbose)
    summary["values"] = {}
    for j in range(3):
        g = _probe(cv, f"value_{j}", "ridge", size, f"value_{j}", out, st.say)
        grids[f"value_{j}"] = g
        summary["values"][f"value_{j}"] = best_cells(g, "r2")
    grids["value_1_large"] = _probe(cv, "value_1_large", "logreg", size, "value_1_large", out, st.say)
    summary["values"]["value_1_large"] = best_cells(grids["value_1_large"])
    for k, v in summary["values"].items():
        if "best_latent" in v:
            st.say(
                f"  {k}: best latent {_fmt_cell(v['best_latent'], 'r2' if 'r2' in v['best'] else 'auroc')}"
            )

    st.start(
        "ablation",
        f"ablation of each thought at the input on {size.n_ablate} problems ({', '.join(size.ablate_modes)})",
    )
    abl = {
        mode: patching.ablate(
            cm,
            eval_probs[: size.n_ablate],
            positions="latents",
            layers=["input"],
            mode=mode,
            progress=verbose,
        )
        for mode in size.ablate_modes
    }
    for mode, g in abl.items():
        g.save(out / "grids" / f"ablate_{mode}")
    summary["ablation"] = {
        mode: {
            "baseline": g.config.get("baseline"),
            "delta_accuracy": dict(zip(g.positions, g.metrics["delta_accuracy"][0].tolist())),
            "delta_logp": dict(zip(g.positions, g.metrics["delta_logp"][0].tolist())),
        }
        for mode, g in abl.items()
    }
    worst = min(abl["zero"].positions, key=lambda p: abl["zero"].sel("delta_logp", -1, p))
    st.say(
        f"  largest effect (zero): {worst}: answer logp {abl['zero'].sel('delta_logp', -1, worst):+.3f}, "
        f"accuracy {100 * abl['zero'].sel('delta_accuracy', -1, worst):+.1f} points"
    )

    st.start("lens", "logit lens of the continuous thoughts (first intermediate-values problem)")
    lens = logit_lens(
        cv,
        layer=None,
        position=[p for p in cv.positions if p.startswith("latent_")],
        k=5,
        model=cm,
        samples=[0],
    )
    row = cv.samples.iloc[0]
    values = [int(row[f"value_{j}"]) for j in range(3)]
    table = viz.LensTable.from_dict(
        lens.cells(sample=0),
        meta={"model": how, "question": row["question"], "step values": values, "lens": "logit lens"},
    )
    table.save(out / "lens.json")
    top = {
        p: lens.frame[
            (lens.frame["position"] == p) & (lens.frame["rank"] == 0) & (lens.frame["layer"] == layers[-1])
        ]["token"].tolist()
        for p in sorted(set(lens.frame["position"]))
    }
    summary["lens"] = {
        "question": row["question"],
        "values": values,
        "top1_last_layer": {p: (t[0] if t else "") for p, t in top.items()},
    }

    st.start("report", "writing report.html")
    report = write_report(out, grids, abl, acc, how, table, values, cm, size.to_dict(), SEEDS)
    st.done()
    summary["stage_seconds"] = st.times
    summary["seconds"] = round(time.perf_counter() - st.t0, 1)
    summary["report"] = str(report)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    st.say(final_summary(summary))
    return DemoResult(report=report, summary=summary, seconds=summary["seconds"], grids=grids)
