"""Shared pieces of the intervention studies: problem inputs, layer arguments and the result grid.

Results are `probes.ProbeGrid`s (layers x positions metrics; layer -1 = the fed-back thought "input"), so
`viz.heatmap` draws them. Used by `interp.patching` (ablate, patch) and `interp.steer`.

    >>> from interp.effects import qa
    >>> qa([{"question": "2 + 3 = ?", "answer": "5"}], None)
    (['2 + 3 = ?'], ['5'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor
from tqdm.auto import tqdm

import poslabels
from interp.intervene import INPUT, Baseline, Batch, Edit, prepare
from probes.grid import Finding, ProbeGrid

__all__ = ["qa", "parse_layers", "make_grid", "grid_config", "cells_of", "fill_grid", "nanmean", "bar",
           "pair_batches", "patch_edits"]


def qa(prompts: Any, answers: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Questions and answers from Problems / dicts (question|text, answer) / strings + `answers`."""
    if isinstance(prompts, str):
        raise TypeError("pass a list of problems or questions, e.g. [question], not a single string.")
    qs, ans = [], []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            qs.append(p)
            ans.append(None)
        elif isinstance(p, dict):
            qs.append(p.get("question", p.get("text")))
            ans.append(p.get("answer"))
        else:
            qs.append(getattr(p, "question", None))
            ans.append(getattr(p, "answer", None))
        if qs[-1] is None:
            raise ValueError(
                f"prompt {i} ({p!r:.80}) has no question: give Problems, dicts with 'question' "
                f"(or 'text') and 'answer', or strings with answers=[...]."
            )
    if answers is not None:
        if len(answers) != len(qs):
            raise ValueError(f"{len(answers)} answers for {len(qs)} prompts; give one answer per prompt.")
        ans = [str(a) for a in answers]
    missing = [i for i, a in enumerate(ans) if a is None]
    if missing:
        raise ValueError(
            f"prompts {missing[:5]} have no answer: pass answers=[...] (the correct final numbers)."
        )
    return qs, [str(a) for a in ans]


def pair_batches(
    model, clean: Any, corrupt: Any, answers: tuple[Sequence[str], Sequence[str]] | None = None
) -> tuple[Batch, Batch]:
    """The two batches of a patching experiment: clean questions and corrupt questions, BOTH scored against the
    clean answer with the corrupt answer as the foil (so `logit_diff` = clean answer minus corrupt answer).

    >>> clean, corrupt = [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}]
    >>> bc, bk = pair_batches(cm, clean, corrupt)
    """
    cq, ca = qa(clean, answers[0] if answers else None)
    kq, ka = qa(corrupt, answers[1] if answers else None)
    if len(cq) != len(kq):
        raise ValueError(f"{len(cq)} clean vs {len(kq)} corrupt problems: patching needs aligned pairs.")
    return prepare(model, cq, ca, foils=ka), prepare(model, kq, ca, foils=ka)


def patch_edits(cells: Sequence[tuple[int, str]], labels: Sequence[str], clean: Baseline) -> list[list[Edit]]:
    """One edit group per cell: write the clean run's value (fed-back thought or residual) at that cell."""
    groups = []
    for layer, p in cells:
        if layer == INPUT:
            groups.append([Edit(INPUT, p, clean.latent_inputs[:, poslabels.latent_index(p)])])
        else:
            i = list(labels).index(p)
            groups.append([Edit(layer, p, clean.resid[layer][:, i], valid=clean.plan.valid[:, i])])
    return groups


def parse_layers(model, layers: Any) -> list[int]:
    n = model.n_layers
    if isinstance(layers, str) and layers == "all":
        return [INPUT] + list(range(n + 1))
    if isinstance(layers, (str, int)):
        layers = [layers]
    out = []
    for x in layers:
        x = INPUT if x in ("input", INPUT) else x
        if not isinstance(x, int) or not INPUT <= x <= n:
            raise ValueError(f"layer {x!r}: use 'input' (the fed-back thought) or an int 0..{n}.")
        out.append(x)
    return out


def make_grid(
    layers: list[int],
    positions: list[str],
    metrics: dict[str, np.ndarray],
    scores: np.ndarray,
    y: np.ndarray,
    config: dict,
    warnings: list[Finding] | None = None,
) -> ProbeGrid:
    return ProbeGrid(
        layers=layers,
        positions=positions,
        metrics=metrics,
        scores=scores,
        y=y.astype(int),
        groups=np.arange(len(y)),
        warnings=warnings or [],
        config=config,
    )


def grid_config(model, kind: str, **kw) -> dict:
    return {
        "kind": kind,
        "model": model.base_name,
        "n_layers": model.n_layers,
        "d_model": model.d_model,
        "num_latents": model.config.num_latents,
        "layer_-1": "input: the fed-back continuous thought",
        **kw,
    }


def cells_of(layers: list[int], labels: list[str]) -> list[tuple[int, str]]:
    """Cells in (layer, position) order, skipping 'input' at non-latent positions."""
    cells = [(layer, p) for layer in layers for p in labels if layer != INPUT or poslabels.is_latent(p)]
    if not cells:
        raise ValueError(
            f"no cells to run: layer 'input' (the fed-back thought) exists only at latent_* positions, "
            f"and the positions asked for are {labels[:6]}. Add residual layers or latent positions."
        )
    return cells


def fill_grid(cells, layers, labels, values: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """{name: [cell, sample]} -> {name: [layer, position, sample]} NaN where no cell."""
    out = {}
    for k, v in values.items():
        arr = np.full((len(layers), len(labels)) + tuple(v.shape[1:]), np.nan)
        for c, (layer, p) in enumerate(cells):
            arr[layers.index(layer), labels.index(p)] = v[c].cpu().double().numpy()
        out[k] = arr
    return out


def nanmean(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        n = np.isfinite(x).sum(-1)
        return np.where(n > 0, np.nansum(x, -1) / np.maximum(n, 1), np.nan)


def bar(progress: bool, desc: str):
    return (lambda it: tqdm(it, desc=desc)) if progress else None


