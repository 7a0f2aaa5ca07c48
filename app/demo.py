"""`codi-lens demo`: the whole study on one CODI model, end to end, with one self-contained report.

    >>> from app.demo import run_demo
    >>> res = run_demo("smollm2-135m", out="runs/demo", quick=True)   # real weights, minutes   # doctest: +SKIP
    >>> res.report, res.summary["deception"]["best_response"]["auroc"]                          # doctest: +SKIP

Stages (each prints a line with the elapsed time; long ones show a tqdm bar):
0. a shipped model organism (`DemoSize.organism`, default pointer3) whose thoughts do the work: accuracy with
   ablated thoughts, probes of each step's value, the logit lens and patching (`app.demo_organism`);
1. a CODI model on the base: `--checkpoint DIR`, else the shipped `codi/pretrained/<model>-arith`, else a
   short `codi.train` run on `codi.data.arithmetic` (kept in `<out>/codi-model`, reused by the next run);
2. accuracy of CODI vs no reasoning vs written reasoning on held-out problems (`codi.evaluate`);
3. `deception-arith` (the instruction before the question, so the thoughts can depend on it) cached over the
   question tail, <bot>, every continuous thought, <eot> and the response tokens (`interp.cache`), and a
   logistic probe sweep with its checks (`probes.sweep`), each cell beside the text-only baseline and the
   white-box gain (`probes.text_baseline`: the instruction is in the prompt, so `label_in_text` fires); in full
   size also the control where the instruction is only in the response;
4. `intermediate-values` (3-step problems) cached the same way; ridge probes for the value of each step and a
   logistic probe for "step-1 value above the median";
5. behaviour labels (`interp.behaviour`, app.demo_deception): the same instruction for every sample, the label is
   whether the stated answer is false; CODI model and plain base model, lying instruction and none;
6. transfer (`probes.transfer`) between instructed-facts, deception-arith and roleplaying, at 1% FPR on honest data;
7. ablation of each continuous thought at the input (`interp.interventions.ablate`, zero and mean);
8. the logit lens of the thoughts (`interp.lens.logit_lens`);
9. `report.html` (`viz.report`) plus `summary.json`; every probe grid is saved under `<out>/grids/`.

Sizes: `DemoSize.full()` and `DemoSize.quick()` (CI); times in benchmarks/RESULTS.md. Deterministic in the seeds;
caches are streamed to `<out>/cache-*` and reopened (not recomputed) when the demo runs again with the same model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import formats
import poslabels
from app.demo_deception import cell_numbers, label_in_text_summary, with_text_baseline
from app.demo_report import final_summary, fmt_cell, write_report
from app.demo_setup import SEEDS, DemoSize, get_codi_model, shipped_checkpoint

__all__ = ["DemoSize", "DemoResult", "run_demo", "get_codi_model", "shipped_checkpoint", "CACHE_POSITIONS",
           "best_cells", "layer_subset"]

SUMMARY_FILE = "summary.json"  # the key numbers of a demo run, next to report.html

# question tail, <bot>, all thoughts, <eot>, all response tokens (labels of interp/positions.py)
CACHE_POSITIONS = ["q[-4]", "q[-3]", "q[-2]", "q[-1]", "bot", "latents", "eot", "response"]


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


def _eval_problems(n: int, exclude: set[str]) -> list:
    from codi import data

    probs = [
        p for p in data.arithmetic(n + 32, steps=(2, 3), seed=SEEDS["eval"]) if p.question not in exclude
    ]
    return probs[:n]


# ------------------------------------------------------------------------------------------------ numbers
def best_cells(grid, metric: str = "auroc") -> dict:
    """{"best_latent", "best_response", "best_question", "best": {...}} cells of a grid (each with its CI, p,
    p_corrected and, where the grid has them, the text baseline and the white-box gain); example: the one of
    `app.compare_table.model_row`, which reads them."""
    out = {}
    for kind in ("latent", "response", "question"):
        pos = [p for p in grid.positions if poslabels.kind(p) == kind]
        if pos and np.isfinite(grid.sel(metric)[:, [grid.positions.index(p) for p in pos]]).any():
            out[f"best_{kind}"] = cell_numbers(grid, *grid.best(metric, positions=pos), metric)
    out["best"] = cell_numbers(grid, *grid.best(metric), metric)
    return out


# ---------------------------------------------------------------------------------------------- the pipeline
def layer_subset(n_layers: int, stride: int) -> list[int]:
    """Every `stride`-th layer of 0..n_layers, always including the last.

    >>> layer_subset(30, 6), layer_subset(5, 2)
    ([0, 6, 12, 18, 24, 30], [0, 2, 4, 5])
    """
    return sorted(set(range(0, n_layers + 1, max(stride, 1))) | {n_layers})


def _cache(cm, task, layers: list[int], size: DemoSize, folder: Path, st: _Stages):
    """Cache `task`; positions identical across labels (expected in the control and roleplaying sets) are a stage
    line here and a finding of the probes, not a Python warning."""
    from interp.codi_cache import codi_cache
    from interp.identity import check_cache

    c = codi_cache(cm, task, layers=layers, positions=CACHE_POSITIONS, batch_size=size.batch_size, out=folder,
                   progress=st.verbose, identity=False)
    if blind := check_cache(c).blind_positions:
        st.say(f"  {folder.name}: identical activations across labels at {len(blind)} of {len(c.positions)} "
               f"positions ({', '.join(blind[:3])}, ...): no probe can read the label there")
    return c


def _probe(cache, target: str, method: str, size: DemoSize, name: str, out: Path, say, text_model=None,
           layers: list[int] | None = None) -> Any:
    """A sweep (and, given `text_model`, its text-only baseline and white-box gain), saved under grids/<name>;
    `layers`: a subset of the cache's layers (default all)."""
    import probes

    grid = probes.sweep(
        cache,
        target=target,
        method=method,
        folds=size.folds,
        layers=layers,
        n_permutations=size.permutations,
        n_bootstrap=500,
        seed=0,
        chunk=32,
        Cs=size.Cs if method == "logreg" else None,
    )
    if text_model is not None:
        grid = with_text_baseline(grid, cache, text_model)
    grid.config["demo_name"] = name
    grid.save(out / "grids" / name)
    errors = [w for w in grid.warnings if w.severity == "error"]
    say(
        f"  {name}: {len(grid.layers)} layers x {len(grid.positions)} positions; checks: "
        f"{len(grid.warnings)} finding(s){f', {len(errors)} error(s)' if errors else ''}"
    )
    return grid


def _organism(size: DemoSize, st: _Stages, summary: dict) -> list:
    """Stage 0: the shipped organism (positive control); its report sections, or [] when skipped."""
    if not size.organism:
        return []
    from app.demo_organism import organism_stage

    st.start("organism", f"model organism {size.organism} (thoughts known to do the work): accuracy, probes, "
                         f"lens, patching on {size.n_organism} held-out problems")
    summary["organism"], lead = organism_stage(size.organism, n=size.n_organism, n_pairs=size.n_organism_pairs,
                                               n_permutations=size.permutations, say=st.say)
    return lead


def _deception(cm, layers: list[int], size: DemoSize, out: Path, st: _Stages, summary: dict, grids: dict):
    """Stage: deception-arith (and, in full size, its response-only control), probes beside the text baseline.
    Returns the deception-arith cache (the transfer stage reuses it)."""
    from probes import tasks

    st.start("deception", f"deception-arith: cache {size.n_deception} samples x thoughts and responses, probe sweep "
                          f"beside the text-only baseline")
    runs = [("deception", "before", "cache-deception")]
    if size.control:  # the seed study's design: the label lives only in the response
        runs.append(("deception_control", "response", "cache-deception-control"))
    first = None
    for name, placement, folder in runs:
        task = tasks.load("deception-arith", n=size.n_deception, seed=SEEDS["deception"], placement=placement)
        c = _cache(cm, task, layers, size, out / folder, st)
        first = first or c
        grids[name] = _probe(c, "label", "logreg", size, name, out, st.say, text_model=cm)
        summary[name] = {**best_cells(grids[name]), "text_baseline": label_in_text_summary(grids[name])}
    for k in ("deception", "deception_control"):
        if k in summary:
            t = summary[k]["text_baseline"]
            st.say(f"  {k}: best latent {fmt_cell(summary[k]['best_latent'])}; best response "
                   f"{fmt_cell(summary[k]['best_response'])}")
            st.say(f"  {k}: label_in_text {'FIRES' if t['fires'] else 'does not fire'} ({len(t['positions'])} of "
                   f"{t['n_positions']} positions, text AUROC up to {t['max_text_auroc']:.3f})")
    return first


def _values(cm, layers: list[int], size: DemoSize, out: Path, st: _Stages, summary: dict, grids: dict):
    """Stage: intermediate-values, ridge/logistic sweeps; returns its cache (lens, transfer control)."""
    from probes import tasks

    st.start("values", f"intermediate-values: cache {size.n_values} 3-step problems, ridge/logistic sweeps")
    iv = tasks.load("intermediate-values", n=size.n_values, seed=SEEDS["values"], steps=3, step=0)
    cv = _cache(cm, iv, layers, size, out / "cache-values", st)
    summary["values"] = {}
    for j in range(3):
        g = _probe(cv, f"value_{j}", "ridge", size, f"value_{j}", out, st.say)
        grids[f"value_{j}"] = g
        summary["values"][f"value_{j}"] = best_cells(g, "r2")
    grids["value_1_large"] = _probe(cv, "value_1_large", "logreg", size, "value_1_large", out, st.say)
    summary["values"]["value_1_large"] = best_cells(grids["value_1_large"])
    for k, v in summary["values"].items():
        if "best_latent" in v:
            st.say(f"  {k}: best latent {fmt_cell(v['best_latent'], 'r2' if 'r2' in v['best'] else 'auroc')}")
    return cv


def _behaviour(cm, layers: list[int], size: DemoSize, out: Path, st: _Stages, summary: dict, grids: dict) -> None:
    if not size.behaviour:
        return
    from app.demo_deception import behaviour_stage

    st.start("behaviour", f"behaviour labels: {size.n_behaviour} questions per (model, instruction: "
                          f"{', '.join(size.behaviour_conditions)}), the model answers, label = stated answer is "
                          f"false; CODI model and plain {cm.config.base_model}")
    summary["behaviour"], g = behaviour_stage(cm, layer_subset(cm.n_layers, size.behaviour_layer_stride), size, out,
                                              st.say)
    grids.update(g)


def _transfer(cm, layers: list[int], size: DemoSize, out: Path, st: _Stages, summary: dict, grids: dict,
              deception_cache, control_cache) -> None:
    if not size.transfer:
        return
    from app.demo_deception import transfer_stage
    from probes import tasks

    st.start("transfer", f"transfer: instructed-facts ({size.n_facts}), deception-arith, roleplaying "
                         f"({size.n_roleplay}); threshold at 1% FPR on {len(control_cache)} honest control samples")
    caches = {"deception-arith": deception_cache}
    probed = [x for x in layer_subset(cm.n_layers, size.transfer_layer_stride) if x in layers]
    for key, n, seed in (("instructed-facts", size.n_facts, SEEDS["facts"]),
                         ("roleplaying", size.n_roleplay, SEEDS["roleplay"])):
        task = tasks.load(key, n=n, seed=seed)
        caches[key] = _cache(cm, task, probed, size, out / f"cache-{key}", st)
        name = key.replace("-", "_")
        grids[name] = _probe(caches[key], "label", "logreg", size, name, out, st.say, text_model=cm)
        summary[name] = {**best_cells(grids[name]), "text_baseline": label_in_text_summary(grids[name])}
    train_grids = {"deception-arith": grids["deception"], "instructed-facts": grids["instructed_facts"]}
    summary["transfer"], g = transfer_stage(caches, control_cache, train_grids, probed, size, out, st.say)
    grids.update(g)


def _ablation(cm, eval_probs: list, size: DemoSize, out: Path, st: _Stages, summary: dict) -> tuple[dict, tuple]:
    from interp import interventions

    st.start("ablation", f"ablation of each thought at the input on {size.n_ablate} problems "
                         f"({', '.join(size.ablate_modes)})")
    abl = {mode: interventions.ablate(cm, eval_probs[: size.n_ablate], positions="latents", layers=["input"],
                                      mode=mode, progress=st.verbose)
           for mode in size.ablate_modes}
    for mode, g in abl.items():
        g.save(out / "grids" / f"ablate_{mode}")
    summary["ablation"] = {
        mode: {"baseline": g.config.get("baseline"),
               "delta_accuracy": dict(zip(g.positions, g.metrics["delta_accuracy"][0].tolist())),
               "delta_logp": dict(zip(g.positions, g.metrics["delta_logp"][0].tolist()))}
        for mode, g in abl.items()
    }
    worst = min(abl["zero"].positions, key=lambda p: abl["zero"].sel("delta_logp", -1, p))
    st.say(f"  largest effect (zero): {worst}: answer logp {abl['zero'].sel('delta_logp', -1, worst):+.3f}, "
           f"accuracy {100 * abl['zero'].sel('delta_accuracy', -1, worst):+.1f} points")
    nec = interventions.necessity(cm, eval_probs[: size.n_ablate], name=cm.config.base_model)
    ex = interventions.early_exit(cm, eval_probs[: size.n_ablate], name=cm.config.base_model)
    summary["necessity"], summary["early_exit"] = nec.to_dict(), ex.to_dict()
    st.say("  accuracy with only the first j thoughts: "
           + ", ".join(f"{j}: {a:.2f}" for j, a in zip(nec.steps, nec.values["accuracy"]))
           + "; LM head top-1 after j thoughts: "
           + ", ".join(f"{j}: {a:.2f}" for j, a in zip(ex.steps, ex.values["answer_top1"])))
    return abl, (nec, ex)


def _lens(cm, cv, layers: list[int], how: str, out: Path, st: _Stages, summary: dict):
    import viz
    from interp.lens import logit_lens

    st.start("lens", "logit lens of the continuous thoughts (first intermediate-values problem)")
    lens = logit_lens(cv, layer=None, position=[p for p in cv.positions if poslabels.is_latent(p)], k=5, model=cm,
                      samples=[0])
    row = cv.samples.iloc[0]
    values = [int(row[f"value_{j}"]) for j in range(3)]
    table = viz.LensTable.from_dict(lens.cells(sample=0), meta={"model": how, "question": row["question"],
                                                                "step values": values, "lens": "logit lens"})
    table.save(out / "lens.json")
    f = lens.frame
    top = {p: f[(f["position"] == p) & (f["rank"] == 0) & (f["layer"] == layers[-1])]["token"].tolist()
           for p in sorted(set(f["position"]))}
    summary["lens"] = {"question": row["question"], "values": values,
                       "top1_last_layer": {p: (t[0] if t else "") for p, t in top.items()}}
    return table, values


def _check_size(size: DemoSize) -> None:
    if size.n_deception < 8 or size.n_deception % 2:
        raise ValueError(f"n_deception={size.n_deception}: pass an even number >= 8 (honest/lying pairs)")
    if min(size.n_values, size.n_eval, size.n_ablate) < 2:
        raise ValueError("n_values, n_eval and n_ablate must each be at least 2")
    if "zero" not in size.ablate_modes:
        raise ValueError(
            f"ablate_modes={size.ablate_modes}: include 'zero' (the report draws it); add 'mean'/'resample'"
        )
    for k in ("n_facts", "n_roleplay"):
        if getattr(size, k) < 8 or getattr(size, k) % 2:
            raise ValueError(f"{k}={getattr(size, k)}: pass an even number >= 8 (honest/deceptive pairs)")
    if size.n_behaviour < 8:
        raise ValueError(f"n_behaviour={size.n_behaviour}: pass at least 8 questions")
    bad = [c for c in size.behaviour_conditions if c not in ("lie", "none")]
    if bad or not size.behaviour_conditions:
        raise ValueError(f"behaviour_conditions={size.behaviour_conditions}: use 'lie' and/or 'none'")


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

    (A real run: the module docstring.)

    >>> run_demo("tiny-llama", quick=True, n_deception=7)              # sizes are checked before any work
    Traceback (most recent call last):
    ...
    ValueError: n_deception=7: pass an even number >= 8 (honest/lying pairs)
    """
    from codi import data, evaluate

    size = dataclasses.replace(size or (DemoSize.quick() if quick else DemoSize.full()), **overrides)
    _check_size(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = _Stages(7 + bool(size.organism) + size.behaviour + size.transfer, verbose)
    summary: dict[str, Any] = {"model": model, "quick": quick, "size": size.to_dict()}
    lead = _organism(size, st, summary)

    st.start("model", f"CODI model on {model}")
    cm, how = get_codi_model(model, out, checkpoint, size, say=st.say)
    summary["codi_model"] = how
    summary["base_model"] = cm.config.base_model
    layers = layer_subset(cm.n_layers, size.layer_stride)
    st.say(f"  {how}: {cm!r}; caching layers {layers[0]}..{layers[-1]} ({len(layers)} of {cm.n_layers + 1})")

    st.start("accuracy", f"accuracy on {size.n_eval} held-out problems: CODI vs no reasoning vs written reasoning")
    seen = {p.question for p in data.arithmetic(size.n_train, steps=(2, 3), seed=SEEDS["train"])}
    eval_probs = _eval_problems(max(size.n_eval, size.n_ablate), seen)
    acc = evaluate(cm, eval_probs[: size.n_eval], batch_size=size.batch_size, cot_max_new_tokens=size.cot_tokens,
                   max_new_tokens=12, progress=verbose)
    summary["accuracy"] = {m: {k: r[k] for k in ("accuracy", "correct", "n")} for m, r in acc.items()}
    st.say("  " + ", ".join(f"{m} {100 * r['accuracy']:.1f}%" for m, r in acc.items()))

    grids: dict[str, Any] = {}
    dc = _deception(cm, layers, size, out, st, summary, grids)
    cv = _values(cm, layers, size, out, st, summary, grids)
    _behaviour(cm, layers, size, out, st, summary, grids)
    _transfer(cm, layers, size, out, st, summary, grids, dc, cv)
    abl, curves = _ablation(cm, eval_probs, size, out, st, summary)
    table, values = _lens(cm, cv, layers, how, out, st, summary)

    st.start("report", "writing report.html")
    report = write_report(out, grids, abl, acc, how, table, values, cm, size.to_dict(), SEEDS, lead=lead,
                          curves=curves, summary=summary)
    st.done()
    summary["stage_seconds"] = st.times
    summary["seconds"] = round(time.perf_counter() - st.t0, 1)
    summary["report"] = str(report)
    formats.atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=1, default=float))
    st.say(final_summary(summary))
    return DemoResult(report=report, summary=summary, seconds=summary["seconds"], grids=grids)
