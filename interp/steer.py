"""Steering along a direction (e.g. a probe's weight vector) at every (layer, position) cell of a CODI run.

    >>> import probes, interp.steer as S
    >>> w, b = S.probe_direction(probes.LogisticProbe().fit(X, y))          # raw-residual weights and bias
    >>> grids = S.steer(cm, probs, w, layers=[6, 12], positions="latents", alphas=[-8, 8],
    ...                 readout=(20, "eot"))
    >>> grids[8.0].sel("delta_readout")                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.effects import bar, cells_of, fill_grid, grid_config, make_grid, nanmean, parse_layers, qa
from interp.intervene import Edit, baseline, check_codi, codi_labels, prepare, run_cells
from probes.grid import ProbeGrid

__all__ = ["steer", "probe_direction"]


def probe_direction(probe) -> tuple[Float[np.ndarray, " d_model"], float]:
    """(w, b) with `probe.decision_function(X) == X @ w + b` on raw residuals, for a fitted linear probe:
    `probes.LogisticProbe` (its StandardScaler folded into the weights), or anything with `coef_`/`intercept_`
    (DiffMeanProbe, LATProbe, LDAProbe, scikit-learn linear models, a scaler+linear Pipeline).

    >>> w, b = probe_direction(probes.LogisticProbe().fit(X, y))
    >>> grids = steer(cm, probs, w, readout=(12, "eot"), readout_bias=b)
    """
    est = getattr(probe, "pipeline_", probe)
    steps = [s for _, s in est.steps] if hasattr(est, "steps") else [est]
    scale, shift = None, None
    for step in steps[:-1]:
        if not (hasattr(step, "scale_") and hasattr(step, "mean_")):
            raise TypeError(f"cannot fold {type(step).__name__} into a linear direction; use a linear probe.")
        scale = (
            np.where(step.scale_ == 0, 1.0, step.scale_) if step.with_std and step.scale_ is not None else 1.0
        )
        shift = step.mean_ if step.with_mean else 0.0
    last = steps[-1]
    if not hasattr(last, "coef_"):
        raise TypeError(
            f"{type(probe).__name__} has no linear weights (coef_); fit it first or use a linear probe."
        )
    w = np.asarray(last.coef_, dtype=np.float64).reshape(-1)
    b = float(np.asarray(getattr(last, "intercept_", 0.0)).reshape(-1)[0])
    if scale is not None:
        w = w / scale
        b = b - float(w @ np.broadcast_to(shift, w.shape))
    return w, b


@torch.no_grad()
def steer(
    model,
    prompts: Any,
    direction: Float[Tensor, " d_model"] | np.ndarray,
    layers: Any = "all",
    positions: str | Sequence[str] = "latents",
    alphas: Sequence[float] = (-4.0, 4.0),
    answers: Sequence[str] | None = None,
    readout: tuple[int, str] | None = None,
    readout_direction: Float[Tensor, " d_model"] | np.ndarray | None = None,
    readout_bias: float = 0.0,
    cells_per_pass: int | None = None,
    max_rows: int = 256,
    share_prompt: bool = True,
    progress: bool = True,
) -> dict[float, ProbeGrid]:
    """Add `alpha * direction` (e.g. a probe's weight vector) at each (layer, position) cell; one grid per
    alpha.

    Metrics: answer_accuracy, answer_logp, delta_accuracy, delta_logp against the unsteered run; with
    `readout=(layer, position)` also readout_score = mean of `h @ readout_direction + readout_bias` at that
    cell (default direction: `direction`), e.g. a deception probe's score, and delta_readout. The probe must
    be linear in the raw residual (fold any feature standardisation into the weights first).

    >>> grids = steer(cm, probs, w, layers=[6, 12], positions="latents", alphas=[-8, 8], readout=(20, "eot"))
    >>> grids[8.0].sel("delta_readout")
    """
    check_codi(model)
    qs, ans = qa(prompts, answers)
    lays = parse_layers(model, layers)
    w = torch.as_tensor(np.asarray(direction), dtype=torch.float32).to(model.device).flatten()
    if w.shape[0] != model.d_model:
        raise ValueError(
            f"direction has {w.shape[0]} entries; this model's residual has d_model={model.d_model}."
        )
    rw = (
        w
        if readout_direction is None
        else torch.as_tensor(np.asarray(readout_direction), dtype=torch.float32).to(model.device).flatten()
    )
    b = prepare(model, qs, ans)
    base = baseline(
        model, b, [readout[0]] if readout else [], positions, extra=[readout[1]] if readout else []
    )
    labels = codi_labels(base.run, positions)
    cells = cells_of(lays, labels)
    alphas = [float(a) for a in alphas]
    groups = [[Edit(layer, p, a * w, op="add")] for a in alphas for layer, p in cells]
    s = run_cells(
        model,
        b,
        groups,
        base.plan,
        cells_per_pass,
        max_rows,
        readout=readout,
        prompt=base.prompt if share_prompt else None,
        progress=bar(progress, "steer"),
    )
    b0 = {k: v.cpu().double().numpy() for k, v in base.scores.items()}
    r0 = None
    if readout:
        r0 = base.resid[readout[0]][:, base.plan.labels.index(readout[1])].float() @ rw + readout_bias
        r0 = r0.cpu().double().numpy()
    out = {}
    n = len(cells)
    for ai, a in enumerate(alphas):
        sub = {k: v[ai * n : (ai + 1) * n] for k, v in s.items() if k != "readout"}
        if readout:
            sub["readout"] = s["readout"][ai * n : (ai + 1) * n].float() @ rw + readout_bias
        per = fill_grid(cells, lays, labels, sub)
        m = {"answer_accuracy": nanmean(per["correct"]), "answer_logp": nanmean(per["answer_logp"])}
        m["delta_accuracy"] = m["answer_accuracy"] - b0["correct"].mean()
        m["delta_logp"] = m["answer_logp"] - b0["answer_logp"].mean()
        scores = per["answer_logp"] - b0["answer_logp"]
        if readout:
            m["readout_score"] = nanmean(per["readout"])
            m["delta_readout"] = m["readout_score"] - r0.mean()
            scores = per["readout"] - r0
        cfg = grid_config(
            model,
            "steering",
            alpha=a,
            n=len(b),
            direction_norm=float(w.norm()),
            readout=list(readout) if readout else None,
            baseline={
                "answer_accuracy": float(b0["correct"].mean()),
                "readout_score": None if r0 is None else float(r0.mean()),
            },
        )
        out[a] = make_grid(lays, labels, m, scores, b0["correct"], cfg)
    return out
