"""Attribution patching (AtP) through the CODI latent recurrence, checked against exact patching.

Exact activation patching (`interp.patching.patch`) runs the corrupt problem once per (layer, position) cell
with the clean value written there. AtP (Nanda 2023; Kramar et al. 2024) estimates every cell at once, to first
order: with `a` the activation at a cell and `m` the metric of the corrupt run,

    effect(cell) ~= (a_clean - a_corrupt) . dm/da |corrupt

from ONE forward and ONE backward pass of the corrupt batch (all pairs batched; that forward is also the corrupt
baseline the exact verification resumes from) and one forward of the clean batch. In a CODI model every thought
is computed from the previous step's last hidden state and fed back, so the gradient at an early cell flows to
the answer both through attention (the KV cache) and through every later fed-back thought; the backward pass
here runs through the whole latent loop, nothing is detached. Cells are those of `patch()`: layer -1
(`"input"`) is the fed-back thought itself, layers 0..n_layers the residual stream (`interp.hooks`), at every
planned position (question tokens, <bot>, latent_j, <eot>, response tokens).

    >>> import codi
    >>> from interp import patching as P
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()
    >>> clean = [{"question": "3 + 4 = ?", "answer": "7"}]
    >>> corrupt = [{"question": "3 + 5 = ?", "answer": "8"}]
    >>> g = P.attribute(cm, clean, corrupt, positions="latents", verify_top=3, progress=False)
    >>> g.metrics["estimate"].shape                  # [layer (input, 0..n_layers), latent]
    (4, 3)
    >>> len(g.config["verification"]["top"])        # the 3 largest estimates, also patched exactly
    3

Verification is built in: the `verify_top` cells with the largest |estimate| are also patched exactly (the
batched engine of `interp.interventions.engine`) and reported beside their estimates (metric `exact`, NaN elsewhere);
`verify_sample` further cells, drawn at random among the cells outside the top-k whose activation the counterfactual
moves, give the AtP*-style check for false negatives (a sampled cell whose exact |effect| reaches the top-k cut-off,
the smallest |estimate| among the top-k) and a rank correlation (Spearman) of estimate and exact effect over the
sample (a restricted range: the top-k is left out, so it runs lower than over all cells). A cell the counterfactual
does not move (clean and corrupt activations equal in every pair, e.g. a question token before the changed one) has
estimate and exact effect 0 by construction: metric `moved` (share of pairs whose activation differs there) marks
them, and they are never sampled. `agreement(estimate, exact)` compares an AtP grid with a full exact sweep over
every cell (rank correlation over all cells and over the moved ones, top-k overlap, false-negative rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from scipy import stats
from torch import Tensor

import poslabels
from argcheck import check_choice, check_int
from grids import Finding, ResultGrid
from interp.hooks import CallClock, edit_residual
from interp.interventions.batch import Batch, check_codi
from interp.interventions.engine import INPUT, Baseline, baseline, batch_labels, from_run
from interp.interventions.patch import pair_batches, patch_edits
from interp.interventions.study import CellStudy, nanmean, parse_layers
from interp.positions import Plan

__all__ = ["attribute", "agreement", "METRICS"]

METRICS = ("logit_diff", "answer_logp")


# ---------------------------------------------------------------------------------------------- gradients
def _metric(scores: dict[str, Tensor], metric: str) -> Tensor:
    """Per-pair metric of a run; logit_diff is NaN where the clean and corrupt answers never differ."""
    return scores["logit_diff"] if metric == "logit_diff" else scores["answer_logp"]


def _taps_prompt(model, b: Batch, positions: str | Sequence[str]) -> bool:
    """Whether a planned position lies in the prompt call (question tokens, <bot>): only then does the gradient
    run tap it, and only then does the backward pass run through it. Tapping it anyway (and asking no grad there)
    gives the same estimates but keeps the prompt call's autograd graph alive: 32 pairs of smollm2-135m, latent
    cells only, peaked at 5.5 GB RSS against 3.2 GB."""
    return any(poslabels.kind(p) in ("question", "bot") for p in batch_labels(model, b, positions))


def _corrupt_run(
    model, b: Batch, res_layers: Sequence[int], positions: str | Sequence[str], metric: str,
) -> tuple[Baseline, Tensor, dict, list[Tensor], list[Tensor]]:
    """The corrupt batch `b` once forward and once backward through the whole latent loop; the forward is also
    the corrupt baseline of the exact verification (no second, gradient-free run of it).

    Returns the baseline (detached; its prompt state and final cache kept for resuming, `engine.Baseline`), the
    per-pair metric [B], {(layer, call): (activation, grad)} for every residual layer at every forward call holding
    a planned position, and the fed-back thoughts and their grads [B, d] per latent step. A zero tensor that
    requires grad is added at each tapped place (`h + d`), so its grad is dm/dh there and the forward values are
    those of an unedited run. The prompt call is tapped only when a planned position lies in it: a later
    position never feeds an earlier one, so no grad at a latent or response cell flows through the prompt call."""
    prompt = _taps_prompt(model, b, positions)
    taps: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    thoughts: list[tuple[Tensor, Tensor]] = []

    def tap(layer: int):
        def fn(h: Tensor, call: int) -> Tensor:
            if call == 0 and not prompt:
                return h
            d = torch.zeros_like(h, requires_grad=True)
            taps[(layer, call)] = (h.detach(), d)
            return h + d

        return fn

    def tap_thought(_j: int, thought: Tensor) -> Tensor:
        d = torch.zeros_like(thought, requires_grad=True)
        thoughts.append((thought.detach(), d))
        return thought + d

    clock = CallClock()
    with torch.enable_grad(), ExitStack() as stack:
        for layer in res_layers:
            stack.enter_context(edit_residual(model.model, layer, tap(layer), clock=clock))
        run = model.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, latent_input_fn=tap_thought,
                            keep_prompt_state=True, on_call=clock)
        base = from_run(model, b, run, positions)
        m = _metric(base.scores, metric)
        calls = set(base.plan.call)
        taps = {k: v for k, v in taps.items() if k[1] in calls}
        total = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).sum()
        leaves = [d for _, d in taps.values()] + [d for _, d in thoughts]
        grads = torch.autograd.grad(total, leaves, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]
    n = len(taps)
    out = {k: (h, g) for (k, (h, _)), g in zip(taps.items(), grads[:n])}
    if len(thoughts) != model.config.num_latents:
        raise RuntimeError(f"the latent loop ran {len(thoughts)} thoughts; expected {model.config.num_latents}.")
    base = replace(base, run=run.detached(), scores={k: v.detach() for k, v in base.scores.items()})
    return base, m.detach(), out, [h for h, _ in thoughts], grads[n:]


def _estimates(
    cells: Sequence[tuple[int, str]], plan: Plan, clean, taps: dict, thoughts: list, thought_grads: list
) -> tuple[Float[Tensor, "cell batch"], Float[Tensor, "cell batch"]]:
    """(a_clean - a_corrupt) . grad per cell and pair, NaN where the cell does not exist for a pair (exact
    patching leaves that pair alone, and a cell's effect averages over the pairs it exists for); and whether the
    activations differ there (1.0 or 0.0: where they are equal, estimate and exact effect are 0 by construction;
    NaN where the cell does not exist)."""
    out, moved = [], []
    for layer, p in cells:
        if layer == INPUT:
            j = poslabels.latent_index(p)
            a_k, g = thoughts[j], thought_grads[j]
            a_c = clean.latent_inputs[:, j].to(a_k.device)
            out.append(((a_c - a_k).double() * g.double()).sum(-1))
            moved.append((a_c != a_k).any(-1).double())
            continue
        i = plan.labels.index(p)
        h, g = taps[(layer, plan.call[i])]
        cell = plan.take([p])
        a_k, gk = cell.gather({plan.call[i]: h})[:, 0], cell.gather({plan.call[i]: g})[:, 0]
        a_c = clean.resid[layer][:, i].to(h.device)
        ok = (plan.valid[:, i] & clean.plan.valid[:, i]).to(h.device)
        dot = ((a_c - a_k).double() * gk.double()).sum(-1)
        nan = torch.full_like(dot, float("nan"))
        out.append(torch.where(ok, dot, nan))
        moved.append(torch.where(ok, (a_c != a_k).any(-1).double(), nan))
    return torch.stack(out, 0), torch.stack(moved, 0)


# ---------------------------------------------------------------------------------------------- attribute
def attribute(
    model,
    clean: Any,
    corrupt: Any,
    layers: Any = "all",
    positions: str | Sequence[str] = "all",
    metric: str = "logit_diff",
    answers: tuple[Sequence[str], Sequence[str]] | None = None,
    verify_top: int = 10,
    verify_sample: int = 0,
    seed: int = 0,
    max_rows: int = 256,
    progress: bool = True,
) -> ResultGrid:
    """AtP estimates of the patching effect of every (layer, position) cell, with exact verification.

    Same arguments and pairs as `interp.patching.patch`. `metric`: "logit_diff" (clean answer minus corrupt
    answer at the first response token where they differ; pairs with equal answers are left out) or
    "answer_logp" (log-probability of the clean answer). Grid metrics per cell, each over the pairs the cell exists
    for (as in patch(); a `partial_cells` finding names cells some pairs lack): `estimate` (mean of the estimated
    change of the metric), `logit_diff` or `clean_logp` (corrupt value + estimate), `recovered` (estimate /
    (clean - corrupt)), `moved` (share of pairs whose clean and corrupt activations differ there), `exact` and
    `exact_recovered` for the verified cells (NaN elsewhere). `scores[l, p, i]` = pair i's estimated patched
    metric (NaN where pair i lacks the cell). `config["verification"]` holds the verified cells,
    the Spearman correlation over the random sample (drawn among the moved cells outside the top) and the false
    negatives found there.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> clean, corrupt = [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}]
    >>> g = attribute(cm, clean, corrupt, verify_top=2, verify_sample=3, progress=False)
    >>> v = g.config["verification"]
    >>> len(v["top"]), len(v["sample"]), 0 <= v["false_negative_rate"] <= 1
    (2, 3, True)
    """
    check_codi(model)
    check_choice("metric", metric, METRICS)
    check_int("verify_top", verify_top, min=0, fix="pass verify_top=0 (no exact verification) or more")
    check_int("verify_sample", verify_sample, min=0, fix="pass verify_sample=0 (no false-negative check) or more")
    check_int("seed", seed, min=0)
    bc, bk = pair_batches(model, clean, corrupt, answers)
    lays = parse_layers(model, layers)
    res_layers = [x for x in lays if x != INPUT]
    base_k, m_k, taps, thoughts, tgrads = _corrupt_run(model, bk, res_layers, positions, metric)
    st = CellStudy.open(model, "attribution", bk, lays, positions, base=base_k)
    base_c = baseline(model, bc, res_layers, st.columns)
    est, moved = _estimates(st.cells, base_k.plan, base_c, taps, thoughts, tgrads)  # [cell, pair]
    exists = torch.isfinite(moved).cpu()                                           # NaN: the pair lacks the cell
    m_c = _metric(base_c.scores, metric).detach()
    pair_ok = torch.isfinite(m_k) & torch.isfinite(m_c)
    est = torch.where(pair_ok[None].to(est.device), est, torch.full_like(est, float("nan")))
    moved = torch.where(pair_ok[None].to(est.device), moved, torch.full_like(moved, float("nan")))
    mean_k, mean_c = float(m_k[pair_ok].mean()), float(m_c[pair_ok].mean())
    span = mean_c - mean_k
    name = "logit_diff" if metric == "logit_diff" else "clean_logp"
    per = st.per_cell({"est": est, "m": est + m_k[None].to(est.device).double(), "moved": moved})
    e = nanmean(per["est"])
    metrics = {"estimate": e, name: nanmean(per["m"]), "recovered": e / span, "moved": nanmean(per["moved"])}
    metrics["exact"] = np.full_like(e, np.nan)
    metrics["exact_recovered"] = np.full_like(e, np.nan)

    verification, warns = _verify(st, base_c, e, metrics, metric, span, verify_top, verify_sample, seed, max_rows,
                                  progress)
    n_ok = int(pair_ok.sum())
    warns += st.partial_cells(exists)
    if n_ok < len(bk):
        warns.append(Finding("equal_answers", f"{len(bk) - n_ok} of {len(bk)} pairs have no defined {metric} "
                             "(clean and corrupt answers never differ) and are left out.", "info"))
    if abs(span) < 1e-3:
        warns.append(Finding("no_effect", f"clean and corrupt runs have the same {metric} ({mean_c:.4g} vs "
                             f"{mean_k:.4g}): 'recovered' is undefined.", "warning"))
    return st.grid(metrics, per["m"], warns, method="AtP (first order, gradients through the latent recurrence)",
                   metric=metric, n_pairs_used=n_ok, verification=verification,
                   baseline={f"{name}_clean": mean_c, f"{name}_corrupt": mean_k})


def _verify(st: CellStudy, base_c, e, metrics, metric, span, top, sample, seed, max_rows,
            progress) -> tuple[dict, list[Finding]]:
    """Exact patching of the top-|estimate| cells and of a random sample of the moved cells outside them; fills
    metrics['exact'] in place."""
    cells, lays, labels, base_k = st.cells, st.layers, st.columns, st.base
    idx = [(lays.index(layer), labels.index(p)) for layer, p in cells]
    flat = np.array([e[i] for i in idx])
    moved = np.array([metrics["moved"][i] > 0 for i in idx])
    finite = np.flatnonzero(np.isfinite(flat))
    order = finite[np.argsort(-np.abs(flat[finite]), kind="stable")]
    top_ids = [int(c) for c in order[: min(top, len(order))]]
    rest = [int(c) for c in order[len(top_ids):] if moved[c]]
    rng = np.random.default_rng(seed)
    sample_ids = [int(c) for c in rng.choice(rest, size=min(sample, len(rest)), replace=False)] if rest else []
    chosen = top_ids + sample_ids
    out: dict = {"top": [], "sample": [], "spearman_sample": None, "false_negatives": [],
                 "false_negative_rate": None, "cutoff": None, "cells_moved": int(moved[finite].sum())}
    if not chosen:
        return out, []
    s = st.run(patch_edits([cells[c] for c in chosen], labels, base_c), None, max_rows, True, progress)
    key = "logit_diff" if metric == "logit_diff" else "answer_logp"
    d = (s[key].double() - base_k.scores[key].double()[None]).cpu()      # paired: each pair's own baseline
    exact = nanmean(torch.where(s["edited"], d, float("nan")).numpy())   # over the pairs the cell exists for
    rows = []
    for c, x in zip(chosen, exact):
        li, pi = idx[c]
        metrics["exact"][li, pi] = x
        metrics["exact_recovered"][li, pi] = x / span
        rows.append({"layer": cells[c][0], "position": cells[c][1], "estimate": float(flat[c]), "exact": float(x)})
    out["top"], out["sample"] = rows[: len(top_ids)], rows[len(top_ids):]
    warns = []
    if top_ids:
        cutoff = float(abs(flat[top_ids[-1]]))
        out["cutoff"] = cutoff
        if out["sample"]:
            fn = [r for r in out["sample"] if _missed(r["exact"], cutoff)]
            out["false_negatives"] = fn
            out["false_negative_rate"] = len(fn) / len(out["sample"])
            if fn:
                warns.append(Finding(
                    "atp_false_negatives",
                    f"{len(fn)} of {len(out['sample'])} randomly sampled cells have an exact effect at least the "
                    f"top-{len(top_ids)} cut-off ({cutoff:.3g}) although AtP estimated less: the first-order "
                    "estimate misses them; patch them exactly (interp.patching.patch).",
                    "warning", [(r["layer"], r["position"]) for r in fn]))
    if len(out["sample"]) >= 3:
        a = [r["estimate"] for r in out["sample"]]
        b = [r["exact"] for r in out["sample"]]
        rho = stats.spearmanr(a, b).statistic if np.std(a) > 0 and np.std(b) > 0 else float("nan")
        out["spearman_sample"] = None if not np.isfinite(rho) else float(rho)
    return out, warns


def _missed(exact: float, cutoff: float) -> bool:
    """The AtP* false negative, for a cell outside the estimate's top-k: its exact effect reaches the top-k
    cut-off (the smallest |estimate| kept), and is not zero.

    >>> _missed(0.5, 0.3), _missed(-0.5, 0.3), _missed(0.1, 0.3), _missed(0.0, 0.0)
    (True, True, False, False)
    """
    return exact != 0 and abs(exact) >= cutoff


# ---------------------------------------------------------------------------------------------- agreement
def agreement(estimate: ResultGrid, exact: ResultGrid, top: int = 10) -> dict:
    """Compare an `attribute()` grid with an exact `patch()` sweep of the same cells and pairs.

    Returns `spearman` and `pearson` (over every cell both grids have), `spearman_moved` (over the `cells_moved`
    cells the counterfactual moves, the estimate grid's `moved` > 0: the others are 0 in both grids by
    construction and would inflate a correlation over all cells), `top_overlap` (share of the `top` largest
    |exact| effects that are also among the `top` largest |estimates|), `false_negative_rate` (share of the cells
    outside the estimate's top-`top` whose exact |effect| reaches the top-`top` cut-off estimate), the cells
    compared and the largest absolute error.

    >>> import codi
    >>> from interp import patching as P
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> clean = [{"question": "3 + 4 = ?", "answer": "7"}, {"question": "2 + 6 = ?", "answer": "8"}]
    >>> corrupt = [{"question": "3 + 5 = ?", "answer": "8"}, {"question": "2 + 7 = ?", "answer": "9"}]
    >>> kw = dict(layers=["input", 1], positions="latents", progress=False)
    >>> a = agreement(P.attribute(cm, clean, corrupt, verify_top=0, **kw), P.patch(cm, clean, corrupt, **kw))
    >>> a["cells"], a["cells_moved"], -1 <= a["spearman"] <= 1
    (4, 4, True)
    """
    if estimate.config.get("kind") != "attribution" or exact.config.get("kind") != "patching":
        raise ValueError("agreement(estimate, exact) takes an attribute() grid and a patch() grid, in that order; "
                         f"got kinds {estimate.config.get('kind')!r} and {exact.config.get('kind')!r}.")
    metric = estimate.config.get("metric", "logit_diff")
    name = "logit_diff" if metric == "logit_diff" else "clean_logp"
    x = exact.metrics.get(f"delta_{name}")        # grids written before delta_*: the level minus the baseline's
    if x is None:
        x = exact.metrics[name] - exact.config["baseline"][f"{name}_corrupt"]
    moves = estimate.metrics.get("moved")   # grids written before `moved`: a cell moved where either value is not 0
    e, ex, mv = [], [], []
    cells = []
    for li, layer in enumerate(estimate.layers):
        for pi, p in enumerate(estimate.positions):
            if layer in exact.layers and p in exact.positions:
                a = estimate.metrics["estimate"][li, pi]
                b = x[exact.layers.index(layer), exact.positions.index(p)]
                if np.isfinite(a) and np.isfinite(b):
                    e.append(a)
                    ex.append(b)
                    mv.append(bool(moves[li, pi] > 0) if moves is not None else bool(a != 0 or b != 0))
                    cells.append((layer, p))
    if len(e) < 3:
        raise ValueError(f"only {len(e)} cells in common; compare grids of the same layers and positions.")
    e, ex, mv = np.array(e), np.array(ex), np.array(mv, dtype=bool)
    k = min(top, len(e))
    top_e = set(np.argsort(-np.abs(e), kind="stable")[:k].tolist())
    top_x = set(np.argsort(-np.abs(ex), kind="stable")[:k].tolist())
    cutoff = float(np.sort(np.abs(e))[::-1][k - 1])
    outside = [i for i in range(len(e)) if i not in top_e]
    fn = [i for i in outside if _missed(ex[i], cutoff)]
    return {
        "cells": len(e),
        "spearman": float(stats.spearmanr(e, ex).statistic),
        "pearson": float(np.corrcoef(e, ex)[0, 1]),
        "cells_moved": int(mv.sum()),
        "spearman_moved": float(stats.spearmanr(e[mv], ex[mv]).statistic) if mv.sum() >= 3 else float("nan"),
        "top": k,
        "top_overlap": len(top_e & top_x) / k,
        "false_negative_rate": len(fn) / max(len(outside), 1),
        "false_negatives": [cells[i] for i in fn],
        "max_abs_error": float(np.abs(e - ex).max()),
    }
