"""Ablation: remove continuous thoughts (or any cell) and measure the answer, one grid cell per (layer, position).

    >>> import codi
    >>> from interp.interventions import ablate
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()
    >>> probs = [{"question": "3 + 4 = ?", "answer": "7"}, {"question": "9 - 2 = ?", "answer": "7"}]
    >>> g = ablate(cm, probs, positions="latents", layers=["input", 1], mode="mean", progress=False)
    >>> g.metrics["delta_logp"].shape, g.config.kind
    ((2, 3), 'ablation')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

import poslabels
from argcheck import BadArgument
from grids import ResultGrid
from interp.interventions.batch import check_codi, prepare, qa
from interp.interventions.engine import INPUT, Baseline, Edit, batch_labels
from interp.interventions.study import CellStudy, cells_of, nanmean, parse_layers

__all__ = ["ablate", "MODES"]

MODES = ("zero", "mean", "resample")


def _derangement(n: int, seed: int) -> Tensor:
    """A fixed permutation in which nobody keeps its own index."""
    if n < 2:
        raise ValueError("mode='resample' needs at least 2 problems (it takes values from other problems).")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    perm = torch.empty_like(order)
    perm[order] = order.roll(1)
    return perm


def _values(mode: str, src: Baseline, perm: Tensor | None):
    """value(layer, label) -> (replacement or None for zeros, valid samples or None) for the ablation `mode`."""

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

    return value


@torch.no_grad()
def ablate(model, prompts: Any, positions: str | Sequence[str] = "latents", layers: Any = ("input",),
           mode: str = "zero", answers: Sequence[str] | None = None, together: bool = False, reference: Any = None,
           seed: int = 0, cells_per_pass: int | None = None, max_rows: int = 256, share_prompt: bool = True,
           progress: bool = True) -> ResultGrid:
    """Remove continuous thoughts (or any cell) and measure the answer: one grid cell per (layer, position).

    `mode`: "zero" (write zeros), "mean" (mean over `reference` problems, default the prompts themselves; plain
    questions will do unless `positions` include response tokens),
    "resample" (the value of another problem, a fixed derangement with `seed`). `together=True` ablates all
    `positions` at once (one column named "latent_1+latent_3"). Metrics: answer_accuracy, answer_logp, margin
    and their changes delta_* against the unablated run, each over the problems the cell exists for (a
    `partial_cells` finding names cells some problems lack, e.g. `q_12` of a short question; deltas are paired
    with those problems' own unablated values); `scores[l, p, i]` = change of problem i's answer_logp (NaN
    where the cell does not exist); `config["baseline"]` the unablated means and each problem's `correct`.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> probs = [{"question": "3 + 4 = ?", "answer": "7"}, {"question": "9 - 2 = ?", "answer": "7"}]
    >>> g = ablate(cm, probs, positions=["latent_0", "latent_1"], together=True, progress=False)
    >>> g.positions
    ['latent_0+latent_1']
    """
    check_codi(model)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; choose one of {MODES}.")
    if reference is not None and mode != "mean":
        raise BadArgument("reference", reference, f"is used only by mode='mean', not mode={mode!r}",
                          "drop reference=, or pass mode='mean'", shown="<problems>")
    qs, ans = qa(prompts, answers)
    if mode == "resample" and len(qs) < 2:
        raise BadArgument("mode", mode, f"needs at least 2 problems (it takes values from other problems); got "
                          f"{len(qs)}", "pass more problems, or mode='mean' / 'zero'")
    lays = parse_layers(model, layers)
    b = prepare(model, qs, ans)
    ref = None
    if reference is not None:
        rq, ra = qa(reference, None, require=False)
        if None in ra:                  # only the activations are used: answers matter only at response positions
            resp = [p for p in batch_labels(model, b, positions) if poslabels.kind(p) == "response"]
            if resp:
                raise BadArgument("reference", reference, f"needs answers: the mean at response positions ({resp[:3]}) "
                                  "is read from the reference's own answer tokens",
                                  "give reference problems with answers, or positions before the response",
                                  shown="<problems without answers>")
            ra = [a if a is not None else "0" for a in ra]      # a placeholder no position before the response sees
        ref = prepare(model, rq, ra)
    record = [x for x in lays if x != INPUT] if mode != "zero" else []
    st = CellStudy.open(model, "ablation", b, lays, positions, record=record)
    labels, src = st.columns, st.base
    if ref is not None:
        src = CellStudy.open(model, "ablation", ref, lays, labels, record=record).base
    value = _values(mode, src, _derangement(len(b), seed) if mode == "resample" else None)

    def edit(layer: int, label: str) -> Edit:
        v, ok = value(layer, label)
        return Edit(layer, label, v, valid=ok)

    if together:
        name = "+".join(labels)
        cells = [(layer, name) for layer in lays if layer != INPUT or all(poslabels.is_latent(p) for p in labels)]
        if not cells:
            cells_of(lays, [p for p in labels if not poslabels.is_latent(p)])  # raises, explaining 'input'
        groups = [[edit(layer, p) for p in labels] for layer, _ in cells]
        st.columns, st.cells = [name], cells
    else:
        groups = [[edit(layer, p)] for layer, p in st.cells]
    s = st.run(groups, cells_per_pass, max_rows, share_prompt, progress)
    per = st.per_cell({"correct": s["correct"], "answer_logp": s["answer_logp"], "margin": s["margin"]},
                      edited=s["edited"])
    b0 = {k: v.cpu().double().numpy() for k, v in st.base.scores.items()}
    metrics = {"answer_accuracy": nanmean(per["correct"]), "answer_logp": nanmean(per["answer_logp"]),
               "margin": nanmean(per["margin"])}
    for name, key in (("delta_accuracy", "correct"), ("delta_logp", "answer_logp"), ("delta_margin", "margin")):
        metrics[name] = nanmean(per[key] - b0[key])        # paired: over the samples the cell edits
    base = {"answer_accuracy": float(b0["correct"].mean()), "answer_logp": float(b0["answer_logp"].mean()),
            "margin": float(b0["margin"].mean()), "correct": [int(x) for x in b0["correct"]]}
    return st.grid(metrics, per["answer_logp"] - b0["answer_logp"], st.partial_cells(s["edited"]), mode=mode,
                   together=together, seed=seed, baseline=base)
