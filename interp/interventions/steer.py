"""Steering along a direction (e.g. a probe's weight vector) at every (layer, position) cell of a CODI run.

    >>> import codi, torch
    >>> from interp.interventions import steer
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> w = torch.randn(cm.d_model)
    >>> grids = steer(cm, [{"question": "3 + 4 = ?", "answer": "7"}], w, layers=[1], alphas=[-8, 8],
    ...               readout=(2, "eot"), progress=False)
    >>> sorted(grids), grids[8.0].positions
    ([-8.0, 8.0], ['latent_0', 'latent_1'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from argcheck import BadArgument
from grids import ResultGrid
from interp.interventions.batch import check_codi, prepare, qa
from interp.interventions.engine import Edit
from interp.interventions.study import CellStudy, nanmean, parse_layers

__all__ = ["steer", "probe_direction"]


def probe_direction(probe) -> tuple[Float[np.ndarray, " d_model"], float]:
    """(w, b) with `probe.decision_function(X) == X @ w + b` on raw residuals, for a fitted linear probe:
    `probes.LogisticProbe` (its StandardScaler folded into the weights), or anything with `coef_`/`intercept_`
    (DiffMeanProbe, LATProbe, LDAProbe, scikit-learn linear models, a scaler+linear Pipeline).

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = np.random.default_rng(0).normal(size=(40, 3)) * [1, 5, 9] + 2; y = (X[:, 0] > 2).astype(int)
    >>> pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    >>> w, b = probe_direction(pipe)
    >>> bool(np.allclose(X @ w + b, pipe.decision_function(X)))
    True
    """
    est = getattr(probe, "pipeline_", probe)
    steps = [s for _, s in est.steps] if hasattr(est, "steps") else [est]
    scale, shift = None, None
    for step in steps[:-1]:
        if not (hasattr(step, "scale_") and hasattr(step, "mean_")):
            raise TypeError(f"cannot fold {type(step).__name__} into a linear direction; use a linear probe.")
        scale = np.where(step.scale_ == 0, 1.0, step.scale_) if step.with_std and step.scale_ is not None else 1.0
        shift = step.mean_ if step.with_mean else 0.0
    last = steps[-1]
    if not hasattr(last, "coef_"):
        raise TypeError(f"{type(probe).__name__} has no linear weights (coef_); fit it first or use a linear probe.")
    w = np.asarray(last.coef_, dtype=np.float64).reshape(-1)
    b = float(np.asarray(getattr(last, "intercept_", 0.0)).reshape(-1)[0])
    if scale is not None:
        w = w / scale
        b = b - float(w @ np.broadcast_to(shift, w.shape))
    return w, b


def _vector(x, model, name: str) -> Tensor:
    v = torch.as_tensor(np.asarray(x), dtype=torch.float32).to(model.device).flatten()
    if v.shape[0] != model.d_model:
        raise ValueError(f"{name} has {v.shape[0]} entries; this model's residual has d_model={model.d_model}.")
    return v


@torch.no_grad()
def steer(model, prompts: Any, direction: Float[Tensor, " d_model"] | np.ndarray, layers: Any = "all",
          positions: str | Sequence[str] = "latents", alphas: Sequence[float] = (-4.0, 4.0),
          answers: Sequence[str] | None = None, readout: tuple[int, str] | None = None,
          readout_direction: Float[Tensor, " d_model"] | np.ndarray | None = None, readout_bias: float = 0.0,
          cells_per_pass: int | None = None, max_rows: int = 256, share_prompt: bool = True,
          progress: bool = True) -> dict[float, ResultGrid]:
    """Add `alpha * direction` (e.g. a probe's weight vector) at each (layer, position) cell; one grid per
    alpha.

    Metrics: answer_accuracy, answer_logp, delta_accuracy, delta_logp against the unsteered run (over the samples
    the cell exists for, paired; a `partial_cells` finding names cells some samples lack); with
    `readout=(layer, position)` also readout_score = mean of `h @ readout_direction + readout_bias` at that
    cell (default direction: `direction`), e.g. a deception probe's score, and delta_readout. The probe must
    be linear in the raw residual (fold any feature standardisation into the weights first: `probe_direction`).

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> w = torch.ones(cm.d_model)
    >>> g = steer(cm, [{"question": "1 + 1 = ?", "answer": "2"}], w, layers=[1], positions=["latent_1"],
    ...           alphas=[2.0], readout=(1, "latent_1"), progress=False)[2.0]
    >>> round(g.sel("delta_readout", 1, "latent_1") / float(w @ w), 4)       # exactly alpha * |w|^2
    2.0
    """
    check_codi(model)
    if readout is not None:
        ok = isinstance(readout, (tuple, list)) and len(readout) == 2 and isinstance(readout[1], str)
        if not ok or isinstance(readout[0], bool) or not isinstance(readout[0], int) or \
                not 0 <= readout[0] <= model.n_layers:
            raise BadArgument("readout", readout, f"must be (residual layer 0..{model.n_layers}, position label)",
                              "pass e.g. readout=(2, 'eot'); the fed-back thought 'input' has no readout")
    qs, ans = qa(prompts, answers)
    lays = parse_layers(model, layers)
    w = _vector(direction, model, "direction")
    rw = w if readout_direction is None else _vector(readout_direction, model, "readout_direction")
    st = CellStudy.open(model, "steering", prepare(model, qs, ans), lays, positions,
                        record=[readout[0]] if readout else [], extra=[readout[1]] if readout else [])
    alphas = [float(a) for a in alphas]
    groups = [[Edit(layer, p, a * w, op="add")] for a in alphas for layer, p in st.cells]
    s = st.run(groups, cells_per_pass, max_rows, share_prompt, progress, readout=readout)
    b0 = {k: v.cpu().double().numpy() for k, v in st.base.scores.items()}
    r0 = None
    if readout:
        r0 = st.base.resid[readout[0]][:, st.base.plan.labels.index(readout[1])].float() @ rw + readout_bias
        r0 = r0.cpu().double().numpy()
    out = {}
    n = len(st.cells)
    for ai, a in enumerate(alphas):
        sub = {k: v[ai * n: (ai + 1) * n] for k, v in s.items() if k != "readout"}
        if readout:
            sub["readout"] = s["readout"][ai * n: (ai + 1) * n].float() @ rw + readout_bias
        ed = s["edited"][ai * n: (ai + 1) * n]
        per = st.per_cell(sub, edited=ed)
        m = {"answer_accuracy": nanmean(per["correct"]), "answer_logp": nanmean(per["answer_logp"])}
        m["delta_accuracy"] = nanmean(per["correct"] - b0["correct"])     # paired: the samples the cell edits
        m["delta_logp"] = nanmean(per["answer_logp"] - b0["answer_logp"])
        scores = per["answer_logp"] - b0["answer_logp"]
        if readout:
            m["readout_score"] = nanmean(per["readout"])
            m["delta_readout"] = nanmean(per["readout"] - r0)
            scores = per["readout"] - r0
        out[a] = st.grid(m, scores, st.partial_cells(ed), alpha=a, direction_norm=float(w.norm()),
                         readout=list(readout) if readout else None,
                         baseline={"answer_accuracy": float(b0["correct"].mean()),
                                   "readout_score": None if r0 is None else float(r0.mean())})
    return out
