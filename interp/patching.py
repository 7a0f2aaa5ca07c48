"""Ablation, activation patching and steering on CODI continuous thoughts, one batched call each.

Results are `probes.ProbeGrid`s (layers x positions metrics), so `viz.heatmap(grid, metric=...)` draws them.
Layer -1 (`"input"` in arguments) is the continuous thought as fed back into the model (via
`latent_input_fn`); layers 0..n_layers are the residual stream (`interp.hooks`). Answers are scored by one
teacher-forced pass of the reference response (see `interp.intervene`): `answer_accuracy` = share of problems
whose greedy answer is the reference, `answer_logp` = log-probability of the answer tokens, `margin` = first
answer token's logit minus the best other.

Batching: every call packs many cells into one latent loop (the batch replicated along the batch dimension,
one replica per cell, `max_rows` rows per pass), and cells after the prompt reuse the unedited prompt call's
KV cache (`share_prompt=True`), so a full layers x latents sweep costs a few forward passes.
`cells_per_pass=1, share_prompt=False` is the plain cell-by-cell loop (same numbers; see
tests/interp/test_patching.py).

    >>> import codi, interp.patching as P
    >>> cm = codi.CODIModel.from_pretrained("runs/codi-smol")                      # doctest: +SKIP
    >>> probs = codi.data.arithmetic(64, steps=3, seed=1)                          # doctest: +SKIP
    >>> g = P.ablate(cm, probs, positions="latents", layers=["input"], mode="zero")  # doctest: +SKIP
    >>> g.sel("delta_accuracy", layer=-1)       # accuracy change per zeroed thought # doctest: +SKIP
    >>> clean, corrupt = P.changed_number_pairs(probs, cm.tokenizer)               # doctest: +SKIP
    >>> h = P.patch(cm, clean, corrupt)         # every (layer, position), batched # doctest: +SKIP
    >>> viz.heatmap(h, metric="recovered")                                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

import poslabels
from interp.attribution import agreement, attribute
from interp.curves import early_exit, necessity
from interp.effects import (
    bar,
    cells_of,
    fill_grid,
    grid_config,
    make_grid,
    nanmean,
    pair_batches,
    parse_layers,
    patch_edits,
    qa,
)
from interp.intervene import INPUT, Edit, baseline, check_codi, prepare, run_cells
from interp.pairs import changed_number_pairs
from interp.steer import probe_direction, steer
from probes.grid import Finding, ProbeGrid

__all__ = [
    "ablate",
    "patch",
    "attribute",
    "agreement",
    "necessity",
    "early_exit",
    "steer",
    "probe_direction",
    "changed_number_pairs",
    "INPUT",
    "MODES",
]

MODES = ("zero", "mean", "resample")


def _edit(layer: int, label: str, value) -> Edit:
    v, ok = value(layer, label)
    return Edit(layer, label, v, valid=ok)


# ------------------------------------------------------------------------------------------------ ablate
@torch.no_grad()
def ablate(
    model,
    prompts: Any,
    positions: str | Sequence[str] = "latents",
    layers: Any = ("input",),
    mode: str = "zero",
    answers: Sequence[str] | None = None,
    together: bool = False,
    reference: Any = None,
    seed: int = 0,
    cells_per_pass: int | None = None,
    max_rows: int = 256,
    share_prompt: bool = True,
    progress: bool = True,
) -> ProbeGrid:
    """Remove continuous thoughts (or any cell) and measure the answer: one grid cell per (layer, position).

    `mode`: "zero" (write zeros), "mean" (mean over `reference` problems, default the prompts themselves),
    "resample" (the value of another problem, a fixed derangement with `seed`). `together=True` ablates all
    `positions` at once (one column named "latent_1+latent_3"). Metrics: answer_accuracy, answer_logp, margin
    and their changes delta_* against the unablated run; `scores[l, p, i]` = change of problem i's
    answer_logp.

    >>> g = ablate(cm, probs, positions=["latent_1", "latent_3"], layers=["input", 4], mode="mean")
    >>> g.sel("delta_accuracy", layer=-1, position="latent_3")
    """
    check_codi(model)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; choose one of {MODES}.")
    qs, ans = qa(prompts, answers)
    lays = parse_layers(model, layers)
    b = prepare(model, qs, ans)
    rec_layers = [x for x in lays if x != INPUT] if mode != "zero" else []
    base = baseline(model, b, rec_layers, positions)
    labels = base.plan.labels
    src = base
    if reference is not None and mode == "mean":
        rq, ra = qa(reference, None)
        src = baseline(model, prepare(model, rq, ra), rec_layers, labels)
    perm = None
    if mode == "resample":
        if len(b) < 2:
            raise ValueError(
                "mode='resample' needs at least 2 problems (it takes values from other problems)."
            )
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(b), generator=g)
        perm = torch.empty_like(order)
        perm[order] = order.roll(1)  # a derangement: nobody keeps its own value

    def value(layer: int, label: str) -> tuple[Tensor | None, Tensor | None]:
        if mode == "zero":
            return None, None
        if layer == INPUT:
            acts, ok = src.latent_inputs[:, poslabels.latent_index(label)], None
        else:
            p = src.plan.labels.index(label)
            acts, ok = src.resid[layer][:, p], src.plan.valid[:, p].to(src.resid[layer].device)
        if mode == "mean":
            w = torch.ones(len(acts), device=acts.device) if ok is None else ok.float()
            return (acts * w[:, None]).sum(0) / w.sum().clamp(min=1), None
        return acts[perm.to(acts.device)], (None if ok is None else ok[perm.to(ok.device)])

    if together:
        name = "+".join(labels)
        cells = [
            (layer, name) for layer in lays if layer != INPUT or all(poslabels.is_latent(p) for p in labels)
        ]
        if not cells:
            cells_of(lays, [p for p in labels if not poslabels.is_latent(p)])  # raises, explaining 'input'
        groups = [[_edit(layer, p, value) for p in labels] for layer, _ in cells]
        cols = [name]
    else:
        cells = cells_of(lays, labels)
        groups = [[_edit(layer, p, value)] for layer, p in cells]
        cols = labels
    s = run_cells(
        model,
        b,
        groups,
        base.plan,
        cells_per_pass,
        max_rows,
        prompt=base.prompt if share_prompt else None,
        progress=bar(progress, "ablate"),
    )
    per = fill_grid(
        cells, lays, cols, {"correct": s["correct"], "answer_logp": s["answer_logp"], "margin": s["margin"]}
    )
    b0 = {k: v.cpu().double().numpy() for k, v in base.scores.items()}
    metrics = {
        "answer_accuracy": nanmean(per["correct"]),
        "answer_logp": nanmean(per["answer_logp"]),
        "margin": nanmean(per["margin"]),
    }
    metrics["delta_accuracy"] = metrics["answer_accuracy"] - b0["correct"].mean()
    metrics["delta_logp"] = metrics["answer_logp"] - b0["answer_logp"].mean()
    metrics["delta_margin"] = metrics["margin"] - b0["margin"].mean()
    cfg = grid_config(
        model,
        "ablation",
        mode=mode,
        together=together,
        n=len(b),
        seed=seed,
        baseline={
            "answer_accuracy": float(b0["correct"].mean()),
            "answer_logp": float(b0["answer_logp"].mean()),
            "margin": float(b0["margin"].mean()),
        },
    )
    return make_grid(lays, cols, metrics, per["answer_logp"] - b0["answer_logp"], b0["correct"], cfg)


# ------------------------------------------------------------------------------------------------ patch
@torch.no_grad()
def patch(
    model,
    clean: Any,
    corrupt: Any,
    layers: Any = "all",
    positions: str | Sequence[str] = "all",
    answers: tuple[Sequence[str], Sequence[str]] | None = None,
    cells_per_pass: int | None = None,
    max_rows: int = 256,
    share_prompt: bool = True,
    progress: bool = True,
) -> ProbeGrid:
    """Activation patching: run each `corrupt` problem with the `clean` problem's activation written at one
    cell, for every (layer, position) cell, batched (the corrupt batch is replicated, one replica per cell).

    Pairs are aligned by position label (a changed number with the same token count keeps every label). Both
    runs are teacher forced on the CLEAN response. Metrics per cell: logit_diff (logit of the clean answer
    token minus the corrupt one, at the first response token where they differ), recovered = (ld - ld_corrupt)
    / (ld_clean - ld_corrupt) (1 = the clean answer fully restored, 0 = no effect), clean_accuracy (greedy
    answer is the clean answer), clean_logp. Pairs whose answers are equal carry no signal and are left out (a
    finding).

    >>> clean, corrupt = changed_number_pairs(codi.data.arithmetic(32, seed=3), cm.tokenizer)
    >>> g = patch(cm, clean, corrupt, layers="all", positions="all")
    >>> g.best("recovered")
    """
    check_codi(model)
    bc, bk = pair_batches(model, clean, corrupt, answers)
    lays = parse_layers(model, layers)
    res_layers = [x for x in lays if x != INPUT]
    base_k = baseline(model, bk, [], positions)
    labels = base_k.plan.labels
    base_c = baseline(model, bc, res_layers, labels)
    cells = cells_of(lays, labels)
    groups = patch_edits(cells, labels, base_c)
    s = run_cells(
        model,
        bk,
        groups,
        base_k.plan,
        cells_per_pass,
        max_rows,
        prompt=base_k.prompt if share_prompt else None,
        progress=bar(progress, "patch"),
    )
    per = fill_grid(
        cells,
        lays,
        labels,
        {"logit_diff": s["logit_diff"], "correct": s["correct"], "answer_logp": s["answer_logp"]},
    )
    ld_c = nanmean(base_c.scores["logit_diff"].cpu().double().numpy()[None])[0]
    ld_k = nanmean(base_k.scores["logit_diff"].cpu().double().numpy()[None])[0]
    ld = nanmean(per["logit_diff"])
    metrics = {
        "logit_diff": ld,
        "recovered": (ld - ld_k) / (ld_c - ld_k),
        "clean_accuracy": nanmean(per["correct"]),
        "clean_logp": nanmean(per["answer_logp"]),
    }
    n_ok = int(bk.foil_valid.sum())
    warns = []
    if n_ok < len(bk):
        warns.append(
            Finding(
                "equal_answers",
                f"{len(bk) - n_ok} of {len(bk)} pairs have the same clean and corrupt "
                "answer and are left out of logit_diff/recovered.",
                "info",
            )
        )
    if abs(ld_c - ld_k) < 1e-3:
        warns.append(
            Finding(
                "no_effect",
                f"clean and corrupt runs have the same logit difference ({ld_c:.4g} vs "
                f"{ld_k:.4g}): 'recovered' is undefined; the corruption does not change the answer.",
                "warning",
            )
        )
    y = base_c.scores["correct"].cpu().numpy()
    cfg = grid_config(
        model,
        "patching",
        n=len(bk),
        n_pairs_used=n_ok,
        baseline={
            "logit_diff_clean": float(ld_c),
            "logit_diff_corrupt": float(ld_k),
            "clean_accuracy_clean": float(base_c.scores["correct"].mean()),
            "clean_accuracy_corrupt": float(base_k.scores["correct"].mean()),
            "clean_logp_clean": float(base_c.scores["answer_logp"].mean()),
            "clean_logp_corrupt": float(base_k.scores["answer_logp"].mean()),
        },
    )
    return make_grid(lays, labels, metrics, per["logit_diff"], y, cfg, warns)
