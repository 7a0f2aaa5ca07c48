"""Multiclass probes over the (layer, position) grid: which cell decodes a many-valued target (e.g. a step's value).

`probes.sweep(..., method="multiclass")` lands here. One multinomial logistic regression per cell (L2, features
standardised inside each training fold, fitted for all cells of a chunk at once with L-BFGS in torch), evaluated
by group-aware K-fold CV. Metrics per cell:

- `accuracy`: pooled held-out accuracy; `chance` = 1 / number of classes (the issue's reading of chance) and
  `majority` = the largest class share (the accuracy of always guessing it);
- `accuracy_lo`, `accuracy_hi`: group-bootstrap 95% interval of the held-out accuracy, widened to +-1.96 x the SD
  of the refitted permutation null (held-out CV predictions are not independent draws);
- `p_value`: group-level label permutations, each refitted through the same folds; `null_accuracy_mean`;
  `p_corrected`: the same permutations, family-wise corrected over cells (max-T, `probes.metrics.max_t_p`);
- `control_accuracy` (one extra shuffle, the control task) and `selectivity` = accuracy - control_accuracy;
- `train_accuracy`, `gap`, `n_test`.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 200)
    >>> X = rng.normal(size=(200, 2, 1, 8)); X[:, 1, 0, :4] += 3 * np.eye(4)[y]   # layer 1 encodes y
    >>> g = probes.sweep(X, labels=y, groups=np.arange(200), method="multiclass", n_permutations=10,
    ...                  progress=False)
    >>> bool(g.sel("accuracy", layer=1, position="0") > 0.9), bool(g.sel("accuracy", layer=0, position="0") < 0.4)
    (True, True)
    >>> float(g.sel("chance", layer=0, position="0"))
    0.25
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from probes.metrics import max_t_p, nan_quantile

__all__ = ["fit_chunk_multiclass", "multiclass_metrics", "DEFAULT_C"]

DEFAULT_C = 1.0


def _fit_predict(X: Float[Tensor, "cell n d"], y: Int[Tensor, "rep n"], train: Tensor, test: Tensor, k: int,
                 C: float, max_iter: int) -> tuple[Tensor, Tensor]:
    """Fit one softmax regression per (cell, label replicate) on `train` rows; predicted classes on `test` and
    the train accuracy. X is standardised with the training rows' mean and SD."""
    Xtr, Xte = X[:, train], X[:, test]
    mu, sd = Xtr.mean(1, keepdim=True), Xtr.std(1, keepdim=True).clamp_min(1e-6)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    c, r, d = X.shape[0], y.shape[0], X.shape[-1]
    W = torch.zeros(c, r, d + 1, k, dtype=X.dtype, requires_grad=True)
    ones_tr = torch.ones(c, Xtr.shape[1], 1, dtype=X.dtype)
    F = torch.cat([Xtr, ones_tr], -1)                                          # [c, ntr, d+1]
    ytr = y[:, train]                                                          # [r, ntr]
    lam = 1.0 / (C * Xtr.shape[1])
    opt = torch.optim.LBFGS([W], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = torch.einsum("cnd,crdk->crnk", F, W)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, k), ytr.expand(c, -1, -1).reshape(-1),
                                                 reduction="sum") / (c * r * Xtr.shape[1])
        loss = loss + 0.5 * lam * (W[:, :, :-1] ** 2).sum() / (c * r)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        train_acc = (torch.einsum("cnd,crdk->crnk", F, W).argmax(-1) == ytr).double().mean(-1)    # [c, r]
        Fte = torch.cat([Xte, torch.ones(c, Xte.shape[1], 1, dtype=X.dtype)], -1)
        pred = torch.einsum("cnd,crdk->crnk", Fte, W).argmax(-1)                               # [c, r, nte]
    return pred, train_acc


def fit_chunk_multiclass(X: Float[Tensor, "cell n d"], y: Int[np.ndarray, " n"], splits: list, perms: np.ndarray,
                         n_classes: int, C: float = DEFAULT_C, max_iter: int = 100) -> dict:
    """Held-out predicted classes per cell for the real labels and every relabelling in `perms` [perm, n].

    Returns {"pred": [cell, n], "null": [cell, perm, n], "train_accuracy": [cell]} (NaN where a sample was never
    in a test fold).

    >>> from probes.splits import group_kfold, permute_labels
    >>> rng = np.random.default_rng(0)
    >>> y, g = rng.integers(0, 3, 60), np.arange(60)                         # 3 classes
    >>> X = rng.normal(size=(2, 60, 4)); X[0, :, :3] += 3 * np.eye(3)[y]     # [cell, n, d]: cell 0 encodes y
    >>> perms = np.stack([permute_labels(y, g, rng) for _ in range(2)])      # [perm, n]
    >>> out = fit_chunk_multiclass(torch.as_tensor(X), y, group_kfold(y, g, k=3, seed=0), perms, n_classes=3)
    >>> out["pred"].shape, out["null"].shape, (out["pred"] == y).mean(1).round(2).tolist()
    ((2, 60), (2, 2, 60), [0.92, 0.35])
    """
    X = X.double()
    ys = torch.as_tensor(np.concatenate([np.asarray(y)[None], perms]), dtype=torch.long)       # [1 + perm, n]
    c, n = X.shape[0], X.shape[1]
    pred = torch.full((c, ys.shape[0], n), float("nan"), dtype=torch.float64)
    train = torch.zeros(c, ys.shape[0], dtype=torch.float64)
    for tr, te in splits:
        p, t = _fit_predict(X, ys, torch.as_tensor(tr), torch.as_tensor(te), n_classes, C, max_iter)
        pred[:, :, torch.as_tensor(te)] = p.double()
        train += t / len(splits)
    return {"pred": pred[:, 0].numpy(), "null": pred[:, 1:].numpy(), "train_accuracy": train[:, 0].numpy()}


def _group_bootstrap_accuracy(correct: np.ndarray, groups: np.ndarray, n_boot: int, seed: int,
                              level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the mean of `correct` [cells, n] (NaN = not scored), resampling whole groups."""
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = codes.max() + 1
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)[:, codes].astype(float)  # [B, n]
    ok = np.isfinite(correct)
    num = np.where(ok, correct, 0) @ w.T                                   # [cells, B]
    den = ok.astype(float) @ w.T
    boots = np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)
    a = (1 - level) / 2
    return nan_quantile(boots, a), nan_quantile(boots, 1 - a)


def multiclass_metrics(pred: np.ndarray, null: np.ndarray, train_acc: np.ndarray, y: np.ndarray, perms: np.ndarray,
                       groups: np.ndarray, n_classes: int, n_bootstrap: int, seed: int) -> dict[str, np.ndarray]:
    """Metrics per cell (see the module docstring) from held-out predictions [cells, n] and null ones
    [cells, perm, n], whose last replicate is the control task.

    >>> y, groups = np.array([0, 1, 2, 0, 1, 2]), np.arange(6)
    >>> pred = np.array([[0, 1, 2, 0, 1, 0]], float)                       # one cell: 5 of 6 right
    >>> perms = np.array([[1, 2, 0, 0, 1, 2]])                               # no permutation, only the control task
    >>> null = np.array([[[0, 1, 2, 0, 1, 2]]], float)                     # [cells, perm, n]
    >>> m = multiclass_metrics(pred, null, np.array([1.0]), y, perms, groups, 3, n_bootstrap=100, seed=0)
    >>> [round(float(m[k][0]), 3) for k in ("accuracy", "chance", "majority", "control_accuracy", "selectivity")]
    [0.833, 0.333, 0.333, 0.5, 0.333]
    """
    correct = np.where(np.isfinite(pred), (pred == y[None]).astype(float), np.nan)
    null_correct = np.where(np.isfinite(null), (null == perms[None]).astype(float), np.nan)
    with warnings.catch_warnings():             # a skipped cell (never scored) is NaN, said by the sweep's finding
        warnings.simplefilter("ignore", RuntimeWarning)
        acc = np.nanmean(correct, 1)
        null_acc = np.nanmean(null_correct, -1)                            # [cells, perm]
    nulls, control = null_acc[:, :-1], null_acc[:, -1]
    lo, hi = _group_bootstrap_accuracy(correct, groups, n_bootstrap, seed)
    out = {"accuracy": acc, "accuracy_lo": lo, "accuracy_hi": hi, "control_accuracy": control,
           "selectivity": acc - control, "train_accuracy": train_acc, "gap": train_acc - acc,
           "chance": np.full(len(acc), 1.0 / n_classes),
           "majority": np.full(len(acc), np.bincount(y).max() / len(y)),
           "n_test": np.isfinite(pred).sum(1).astype(float)}
    if nulls.shape[1]:
        has = np.isfinite(acc) & np.isfinite(nulls).all(1)                   # a skipped cell has no p-value
        out["p_value"] = np.where(has, (1 + (nulls >= acc[:, None] - 1e-12).sum(1)) / (1 + nulls.shape[1]), np.nan)
        out["p_corrected"] = np.where(has, max_t_p(acc, nulls), np.nan)
        out["null_accuracy_mean"] = np.where(has, nulls.mean(1), np.nan)
        if nulls.shape[1] >= 10:
            sd = nulls.std(1, ddof=1)
            out["accuracy_lo"] = np.clip(np.minimum(lo, acc - 1.96 * sd), 0, 1)
            out["accuracy_hi"] = np.clip(np.maximum(hi, acc + 1.96 * sd), 0, 1)
    else:
        out["p_value"] = np.full(len(acc), np.nan)
        out["p_corrected"] = np.full(len(acc), np.nan)
        out["null_accuracy_mean"] = np.full(len(acc), np.nan)
    return out
