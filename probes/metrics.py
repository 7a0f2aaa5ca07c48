"""Metrics for held-out probe scores, batched over cells: AUROC (with ties), group-bootstrap CIs, permutation
p-values (per cell, and family-wise corrected over cells by max-T), recall at a fixed FPR, and the DeLong test for
two cells scored on the same samples.

    >>> import numpy as np
    >>> from probes.metrics import auroc
    >>> float(auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])))
    0.75
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from jaxtyping import Float, Int
from scipy import stats


def nan_quantile(x: np.ndarray, q: float, axis: int = 1) -> np.ndarray:
    """`np.nanquantile` along `axis`, NaN (without numpy's "All-NaN slice" warning) where a row has no finite value:
    skipped cells carry no replicate, which is expected, not a numerical problem.

    >>> nan_quantile(np.array([[1.0, 3.0], [np.nan, np.nan]]), 0.5).tolist()
    [2.0, nan]
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        return np.nanquantile(x, q, axis=axis)


def auroc(scores: Float[np.ndarray, "... n"], y: Int[np.ndarray, "... n"],
          weights: Float[np.ndarray, "... n"] | None = None) -> np.ndarray:
    """AUROC of scores for binary y along the last axis (ties count 1/2), optionally with sample weights.

    Broadcasts over leading axes: scores [cells, n] with y [n] gives [cells]. NaN where a class is empty.

    >>> y = np.array([0, 0, 1, 1])
    >>> auroc(np.array([[0.1, 0.4, 0.35, 0.8], [0.1, 0.2, 0.2, 0.4]]), y).tolist()      # two cells; a tie counts 1/2
    [0.75, 0.875]
    >>> float(auroc(np.array([0.1, 0.4, 0.35, 0.8]), y, weights=np.array([1.0, 0.0, 1.0, 1.0])))  # weight 0: left out
    1.0
    """
    s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    yy = torch.as_tensor(np.asarray(y)).to(torch.float64).expand_as(s)
    w = torch.ones_like(s) if weights is None else torch.as_tensor(np.asarray(weights, np.float64)).expand_as(s)
    return auroc_tensor(s, yy, w).numpy()


def auroc_tensor(s: Float[torch.Tensor, "... n"], y: Float[torch.Tensor, "... n"],
                 w: Float[torch.Tensor, "... n"]) -> torch.Tensor:
    """AUROC along the last axis of same-shaped score, label and weight tensors (ties count 1/2), in torch (on the
    tensors' device): the batched form of `auroc` for callers that already hold tensors.

    >>> s = torch.tensor([[0.1, 0.4, 0.35, 0.8]], dtype=torch.float64)
    >>> auroc_tensor(s, torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), torch.ones_like(s)).tolist()
    [0.75]
    """
    ss, order = torch.sort(s, dim=-1)
    return _auroc_sorted(ss, torch.gather(y, -1, order), torch.gather(w, -1, order))




def _auroc_sorted(ss: torch.Tensor, ys: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """AUROC for scores already sorted ascending along the last axis; ys and ws are in the same order and may
    carry extra leading axes that ss broadcasts over (ss [c, 1, n] with bootstrap weights ws [c, B, n])."""
    wneg = ws * (1 - ys)
    cneg0 = torch.cat([torch.zeros_like(wneg[..., :1]), torch.cumsum(wneg, -1)], -1)  # neg weight among first k
    ss = ss.contiguous()
    lt = torch.searchsorted(ss, ss, right=False).expand_as(wneg)     # wneg has the full (broadcast) shape
    le = torch.searchsorted(ss, ss, right=True).expand_as(wneg)
    c_lt = torch.gather(cneg0, -1, lt)
    below = c_lt + 0.5 * (torch.gather(cneg0, -1, le) - c_lt)
    wpos = ws * ys
    num = (wpos * below).sum(-1)
    den = wpos.sum(-1) * wneg.sum(-1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, float("nan")))


def group_bootstrap_auroc(scores: Float[np.ndarray, "cells n"], y: Int[np.ndarray, " n"],
                          groups: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                          chunk: int = 8, pairwise: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of AUROC per cell, resampling whole groups with replacement (same draws for every cell).

    Samples with NaN score are left out. Returns (lo, hi), each [cells]. The replicates are
    `group_bootstrap_replicates` (same arguments, same draws).

    >>> rng = np.random.default_rng(0)
    >>> y, groups = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)           # 20 pairs: resample whole pairs
    >>> scores = np.stack([y + rng.normal(size=40), rng.normal(size=40)])      # [cells, n]: a signal, noise
    >>> lo, hi = group_bootstrap_auroc(scores, y, groups, n_boot=200)
    >>> auroc(scores, y).tolist(), bool(lo[0] > 0.75), bool(lo[1] < 0.5 < hi[1])
    ([0.9075, 0.465], True, True)
    """
    boots = group_bootstrap_replicates(scores, y, groups, n_boot, seed, chunk, pairwise)
    a = (1 - level) / 2
    return nan_quantile(boots, a), nan_quantile(boots, 1 - a)


def group_bootstrap_replicates(scores: Float[np.ndarray, "cells n"], y: Int[np.ndarray, " n"],
                               groups: np.ndarray, n_boot: int = 1000, seed: int = 0, chunk: int = 8,
                               pairwise: bool | None = None) -> Float[np.ndarray, "cells boot"]:
    """AUROC of every cell under `n_boot` resamplings of whole groups with replacement: [cells, n_boot].

    The draws depend only on (groups, n_boot, seed), so two calls with those equal resample the same groups:
    differences of their replicates give a paired CI (e.g. probe minus text baseline). Samples with NaN score are
    left out. Each cell's scores are sorted once; a resample only reweights them (a group drawn k times weighs k),
    so no replicate is re-sorted; for small n the weighted pair counts are one matmul per cell
    (sum_ij w_i [s_i > s_j] w_j over positives i, negatives j; `pairwise=None` picks by size).

    >>> import numpy as np
    >>> s = np.array([[0.1, 0.9, 0.2, 0.8, 0.3, 0.7]]); y = np.array([0, 1, 0, 1, 0, 1])
    >>> group_bootstrap_replicates(s, y, np.array([0, 0, 1, 1, 2, 2]), n_boot=5).shape
    (1, 5)
    """
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = codes.max() + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)   # [B, G]
    w = torch.as_tensor(counts[:, codes], dtype=torch.float64)                           # [B, n]
    out = np.full((len(scores), n_boot), np.nan)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    pos, neg = np.asarray(y) == 1, np.asarray(y) == 0
    if pairwise is None:                                    # small n: one matmul per cell beats the cumsums
        pairwise = bool(pos.sum() * neg.sum() <= 2000 * len(yt))
    if pairwise:
        chunk = max(1, int(2**24 // max(pos.sum() * neg.sum(), 1)))
        wp, wn = w[:, pos].float(), w[:, neg].float()                                   # [B, n_pos], [B, n_neg]
    for i in range(0, len(scores), chunk):
        s = torch.as_tensor(scores[i:i + chunk])                                         # [c, n]
        ok = torch.isfinite(s)
        if pairwise:
            sp, sn = s[:, pos], s[:, neg]
            okp, okn = ok[:, pos].float(), ok[:, neg].float()
            T = ((sp[:, :, None] > sn[:, None, :]).float() + 0.5 * (sp[:, :, None] == sn[:, None, :]).float())
            T = T * okp[:, :, None] * okn[:, None, :]                                    # [c, n_pos, n_neg]
            num = ((wp @ T) * wn).sum(-1).double()                                        # [c, B]
            den = ((okp @ wp.T) * (okn @ wn.T)).double()
            boots = torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, float("nan"))).numpy()
        else:
            ss, order = torch.sort(torch.where(ok, s, torch.zeros_like(s)), dim=-1)
            ws = w[:, order].permute(1, 0, 2) * torch.gather(ok, -1, order)[:, None, :]  # [c, B, n]
            boots = _auroc_sorted(ss[:, None, :], yt[order][:, None, :], ws).numpy()      # [c, B]
        out[i:i + chunk] = boots
    return out


def permutation_p(observed: Float[np.ndarray, " cells"], null: Float[np.ndarray, "cells perm"]) -> np.ndarray:
    """One-sided permutation p-value (1 + #{null >= observed}) / (1 + n_perm); NaN nulls are ignored.

    >>> permutation_p(np.array([0.9, 0.5]), np.array([[0.5, 0.6, 0.7, 0.95], [0.4, 0.5, 0.6, np.nan]])).tolist()
    [0.4, 0.75]
    """
    ok = np.isfinite(null)
    ge = ((null >= observed[:, None] - 1e-12) & ok).sum(1)
    return (1 + ge) / (1 + ok.sum(1))


def max_t_p(observed: Float[np.ndarray, " cells"], null: Float[np.ndarray, "cells perm"]) -> np.ndarray:
    """Westfall-Young single-step max-T p-value per cell, corrected for picking among all cells.

    The same relabelings must be used for every cell (null[:, j] all come from permutation j). Per permutation
    the maximum over cells of the null statistic is one draw of "the best cell under the null"; then
    p(cell) = (1 + #{perm : max over cells of null[:, perm] >= observed(cell)}) / (1 + n_perm).
    NaN null values are ignored in the maximum (permutations with no finite value are dropped); a cell with NaN
    observed value (skipped, say) is left out of the family and gets NaN. It controls the family-wise error rate:
    on pure noise, P(min over cells of p <= a) <= a.

    >>> obs = np.array([0.95, 0.70, np.nan])
    >>> null = np.array([[0.60, 0.50, 0.55, 0.52],
    ...                  [0.58, 0.72, 0.50, 0.61],
    ...                  [0.90, 0.50, 0.50, 0.50]])   # [cells, perm]; cell 3 (NaN) is left out: max .60 .72 .55 .61
    >>> max_t_p(obs, null).tolist()                        # 0.95: no max >= it -> 1/5; 0.70: only .72 -> 2/5
    [0.2, 0.4, nan]
    """
    observed, null = np.asarray(observed, np.float64), np.asarray(null, np.float64)
    ok = np.isfinite(null) & np.isfinite(observed)[:, None]
    col_max = np.where(ok, null, -np.inf).max(0, initial=-np.inf)[ok.any(0)]          # [perm with a value]
    ge = (col_max[None, :] >= observed[:, None] - 1e-12).sum(1)
    return np.where(np.isfinite(observed), (1 + ge) / (1 + len(col_max)), np.nan)


def recall_at_fpr(scores: Float[np.ndarray, "cells n"], y: Int[np.ndarray, " n"], calib: np.ndarray,
                  fpr: float = 0.01) -> np.ndarray:
    """Recall on positive samples outside `calib` at the threshold giving `fpr` on the negatives inside `calib`
    (Apollo-style: threshold from a control set, recall measured elsewhere). calib: bool [n].

    >>> scores = np.array([[0.1, 0.2, 0.3, 0.9, 0.25, 0.8]])
    >>> y, calib = np.array([0, 0, 0, 1, 1, 1]), np.array([True, True, True, False, False, False])
    >>> recall_at_fpr(scores, y, calib, 0.01).round(3).tolist()    # threshold ~0.3 from samples 0-2; 2 of 3 above
    [0.667]
    """
    scores = np.atleast_2d(scores)
    y = np.asarray(y)
    thr = fpr_threshold(scores, y, calib, fpr)
    out = np.full(len(scores), np.nan)
    pos = ~calib & (y == 1)
    for i, s in enumerate(scores):
        sp = s[pos]
        sp = sp[np.isfinite(sp)]
        if len(sp) and np.isfinite(thr[i]):
            out[i] = float(np.mean(sp > thr[i]))
    return out


def fpr_threshold(scores: Float[np.ndarray, "cells n"], y: Int[np.ndarray, " n"], calib: np.ndarray,
                  fpr: float = 0.01) -> np.ndarray:
    """Per cell the score threshold above which a fraction `fpr` of the negatives inside `calib` lie (the
    1 - fpr quantile of their finite scores; NaN if there are none). calib: bool [n].

    >>> float(fpr_threshold(np.arange(101.0)[None], np.zeros(101), np.ones(101, bool), 0.01)[0])
    99.0
    """
    scores = np.atleast_2d(scores)
    neg = np.asarray(calib, bool) & (np.asarray(y) == 0)
    out = np.full(len(scores), np.nan)
    for i, s in enumerate(scores):
        sn = s[neg]
        sn = sn[np.isfinite(sn)]
        if len(sn):
            out[i] = float(np.quantile(sn, 1 - fpr))
    return out


def delong(scores_a: Float[np.ndarray, " n"], scores_b: Float[np.ndarray, " n"], y: Int[np.ndarray, " n"]) -> dict:
    """DeLong test of AUROC(a) == AUROC(b) for two scorings of the same samples (two-sided).

    Samples are treated as independent (with paired/grouped data the p-value is optimistic; compare with the
    group-bootstrap CIs). Returns {"auroc_a", "auroc_b", "diff", "z", "p_value", "n"}.

    >>> rng = np.random.default_rng(0)
    >>> y = np.tile([0, 1], 20)
    >>> d = delong(y + rng.normal(size=40), rng.normal(size=40), y)        # a signal against noise
    >>> round(d["auroc_a"], 3), round(d["auroc_b"], 3), d["n"], bool(d["p_value"] < 0.001)
    (0.907, 0.465, 40, True)
    """
    a, b, y = np.asarray(scores_a, float), np.asarray(scores_b, float), np.asarray(y)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b, y = a[ok], b[ok], y[ok]
    pos, neg = y == 1, y == 0
    if pos.sum() < 2 or neg.sum() < 2:
        raise ValueError("DeLong needs at least 2 samples of each class scored by both cells")
    v10, v01, aucs = [], [], []
    for s in (a, b):
        sp, sn = s[pos], s[neg]
        psi = (sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :])
        v10.append(psi.mean(1))
        v01.append(psi.mean(0))
        aucs.append(psi.mean())
    s10, s01 = np.cov(np.stack(v10)), np.cov(np.stack(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / pos.sum() + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / neg.sum()
    diff = aucs[0] - aucs[1]
    if var <= 0:
        z, p = (0.0, 1.0) if diff == 0 else (np.inf * np.sign(diff), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2 * stats.norm.sf(abs(z)))
    return {"auroc_a": float(aucs[0]), "auroc_b": float(aucs[1]), "diff": float(diff), "z": float(z),
            "p_value": float(p), "n": int(ok.sum())}


def f1_accuracy_confusion(scores: Float[np.ndarray, "cells n"], y: Int[np.ndarray, " n"],
                          threshold: float = 0.0) -> dict[str, np.ndarray]:
    """Accuracy, F1 (positive class 1) and pooled confusion counts at `threshold` on the decision score.

    >>> m = f1_accuracy_confusion(np.array([[-1.0, 2.0, 3.0, -4.0]]), np.array([0, 1, 0, 1]))
    >>> {k: v.tolist() for k, v in m.items()}
    {'accuracy': [0.5], 'f1': [0.5], 'tn': [1.0], 'fp': [1.0], 'fn': [1.0], 'tp': [1.0]}
    """
    s = np.atleast_2d(scores)
    ok = np.isfinite(s)
    pred = s > threshold
    y1 = (np.asarray(y) == 1)[None]
    tp = (pred & y1 & ok).sum(1).astype(float)
    fp = (pred & ~y1 & ok).sum(1).astype(float)
    fn = (~pred & y1 & ok).sum(1).astype(float)
    tn = (~pred & ~y1 & ok).sum(1).astype(float)
    n = ok.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (tp + tn) / n
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"accuracy": acc, "f1": f1, "tn": tn, "fp": fp, "fn": fn, "tp": tp}
