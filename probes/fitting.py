"""Per-chunk fitting for `probes.sweep`: for a chunk of cells sharing the same samples, run every outer fold,
the nested C selection, and the permutation/control refits, and return held-out scores.

    >>> from probes.splits import group_kfold, permute_labels
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    >>> X = torch.randn(2, 60, 50)                                   # [cell, sample, d]
    >>> splits = group_kfold(y, g, k=5, seed=0)
    >>> perms = np.stack([permute_labels(y, g, np.random.default_rng(0)) for _ in range(3)])
    >>> out = fit_chunk_logreg(X, y, g, splits, perms, Cs=(1e-3, 1e-2), inner_folds=3, seed=0, null_splits=5,
    ...                        tol=1e-5, max_iter=1000)
    >>> out["scores"].shape, out["null"].shape    # held-out decision score of every sample; of every relabeling
    ((2, 60), (2, 3, 60))
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float

from probes.batched import fit_logreg, fit_ridge, iter_fold_features
from probes.metrics import auroc_tensor
from probes.splits import group_kfold


def _inner_masks(y_tr: np.ndarray, g_tr: np.ndarray, k: int, seed: int, stratified: bool = True) -> np.ndarray:
    """0/1 train masks [k, n_tr] of group-aware inner folds (1 = used for fitting)."""
    inner = group_kfold(y_tr, g_tr, k=k, seed=seed + 1, stratified=stratified)
    masks = np.zeros((len(inner), len(y_tr)), dtype=np.float32)
    for i, (tr, _) in enumerate(inner):
        masks[i, tr] = 1
    return masks


def inner_masks_for(splits: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray, groups: np.ndarray,
                    inner_folds: int, seed: int) -> list[np.ndarray]:
    """The inner-CV train masks of every outer split (what fit_chunk_logreg would build), computed once.

    >>> from probes.splits import group_kfold
    >>> y, g = np.tile([0, 1], 12), np.repeat(np.arange(12), 2)     # 12 groups, both labels in each
    >>> masks = inner_masks_for(group_kfold(y, g, k=4), y, g, inner_folds=3, seed=0)
    >>> len(masks), masks[0].shape                                  # per outer split: [inner fold, n_train]
    (4, (3, 18))
    """
    return [_inner_masks(y[tr], groups[tr], inner_folds, seed + si) for si, (tr, _) in enumerate(splits)]


def fit_chunk_logreg(X: Float[torch.Tensor, "cell n d"], y: np.ndarray, groups: np.ndarray,
                     splits: list[tuple[np.ndarray, np.ndarray]], perms: np.ndarray, Cs: tuple[float, ...],
                     inner_folds: int, seed: int, null_splits: int, tol: float, max_iter: int,
                     search_tol: float = 1e-5, inner_masks: list[np.ndarray] | None = None,
                     null_tol: float = 1e-3) -> dict:
    """Logistic probes for a chunk of cells. Per split: the inner group CV over `Cs` (fits at `search_tol`) picks
    C, then one batch refits the real labels (at `tol`) and every relabeling in `perms` [n_perm, n] (at
    `null_tol`) at that C; only the first `null_splits` splits get relabelings (a final dev->test split does
    not). The C search needs tight fits: its choice hangs on differences of one pair's order in a validation
    AUROC; the earlier solver at 1e-3 chose another C than scikit-learn's exact nested fit in 89 of 600 folds of
    real residuals (0 of 600 now, at 1e-5; tests/probes/test_reference.py). The null's looser tolerance (1e-3) moves
    its held-out AUROCs by <= 0.0018 on real residuals (a few test pairs; benchmarks/results/probes.md).
    `inner_masks` (one `inner_masks_for` result per split) saves recomputing the inner folds for every chunk.

    Returns dict: scores [c, n], null [c, n_perm, n], train_auroc [c], log10_C [c] (mean over splits of the
    chosen log10 C), fold_log10_C [c, n_splits], not_converged [c] bool, fold_auroc [c, n_splits].

    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> out = fit_chunk_logreg(torch.randn(1, 40, 30), y, g, group_kfold(y, g, k=4, seed=0), np.zeros((0, 40)),
    ...                        Cs=(0.1, 1.0), inner_folds=3, seed=0, null_splits=4, tol=1e-5, max_iter=1000)
    >>> out["fold_log10_C"].shape                 # the C chosen in each outer fold
    (1, 4)
    """
    c, n, _ = X.shape
    dev = X.device
    Cs_t = torch.tensor(sorted(Cs), dtype=X.dtype, device=dev)
    nC = len(Cs_t)
    scores = torch.full((c, n), float("nan"), dtype=torch.float64)
    null = torch.full((c, len(perms), n), float("nan"), dtype=torch.float64)
    train_auc, logC, fold_auc = [], [], []
    bad = torch.zeros(c, dtype=torch.bool)
    for si, ((tr, te), (F_tr, F_te, lam)) in enumerate(zip(splits, iter_fold_features(X, splits))):
        y_tr = torch.as_tensor(y[tr], dtype=X.dtype, device=dev)
        if nC > 1:
            m = inner_masks[si] if inner_masks is not None else _inner_masks(y[tr], groups[tr], inner_folds, seed + si)
            masks = torch.as_tensor(m, device=dev)
            k = masks.shape[0]
            S = masks.repeat(nC, 1)                                          # [nC*k, n_tr], C-major
            W, b, _ = fit_logreg(F_tr, y_tr.expand(len(S), -1), S, Cs_t.repeat_interleave(k),
                                 max_iter=max_iter, tol=search_tol)
            Mi = (torch.bmm(W, F_tr.transpose(1, 2)) + b[..., None]).view(c, nC, k, -1).double()
            val_w = (1 - S).view(nC, k, -1).double()
            val = auroc_tensor(Mi, y_tr.double().expand_as(Mi), val_w.expand_as(Mi))       # [c, nC, k]
            mean_val = torch.nan_to_num(val, nan=0.5).mean(-1)
            tie = 1e-9 * torch.arange(nC, 0, -1, dtype=mean_val.dtype, device=mean_val.device)    # ties -> small C
            best = torch.argmax(mean_val + tie, dim=1)
            Cc = Cs_t[best]
        else:
            Cc = Cs_t.expand(c)
        n_null = len(perms) if si < null_splits else 0
        Y = y_tr[None]
        if n_null:
            Y = torch.cat([Y, torch.as_tensor(perms[:, tr], dtype=X.dtype, device=dev)])
        tols = torch.tensor([tol] + [null_tol] * n_null, dtype=X.dtype, device=dev)
        W, b, info = fit_logreg(F_tr, Y, None, Cc[:, None].expand(c, len(Y)), max_iter=max_iter, tol=tols)
        bad |= ~info["converged"][:, 0].cpu()
        S_te = (torch.bmm(W, F_te.transpose(1, 2)) + b[..., None]).double().cpu()          # [c, 1 + n_null, n_te]
        s_te = S_te[:, 0]
        s_tr = (torch.einsum("cr,cnr->cn", W[:, 0], F_tr) + b[:, :1]).double().cpu()
        scores[:, te] = s_te
        if n_null:
            null[:, :, te] = S_te[:, 1:]
        yt = torch.as_tensor(y[te], dtype=torch.float64)
        fold_auc.append(auroc_tensor(s_te, yt.expand(c, -1), torch.ones(c, len(te), dtype=torch.float64)))
        ones = torch.ones(c, len(tr), dtype=torch.float64)
        train_auc.append(auroc_tensor(s_tr, y_tr.double().cpu().expand(c, -1), ones))
        logC.append(torch.log10(Cc).double().cpu())
        del F_tr, F_te, lam
    return {"scores": scores.numpy(), "null": null.numpy(), "train_auroc": torch.stack(train_auc, 1).mean(1).numpy(),
            "log10_C": torch.stack(logC, 1).mean(1).numpy(), "fold_log10_C": torch.stack(logC, 1).numpy(),
            "not_converged": bad.numpy(), "fold_auroc": torch.stack(fold_auc, 1).numpy()}


def _r2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    ss_res = ((y - pred) ** 2).sum(-1)
    ss_tot = ((y - y.mean(-1, keepdim=True)) ** 2).sum(-1).clamp_min(1e-30)
    return 1 - ss_res / ss_tot


def fit_chunk_ridge(X: Float[torch.Tensor, "cell n d"], y: np.ndarray, groups: np.ndarray,
                    splits: list[tuple[np.ndarray, np.ndarray]], perms: np.ndarray, alphas: tuple[float, ...],
                    inner_folds: int, seed: int, null_splits: int) -> dict:
    """Ridge probes (continuous target) for a chunk of cells; alpha chosen per split by inner group CV (R^2).
    Same return layout as fit_chunk_logreg (train_auroc holds train R^2, log10_C holds log10 alpha).

    >>> from probes.splits import group_kfold
    >>> gen = torch.Generator().manual_seed(0)
    >>> X = torch.randn(1, 60, 4, generator=gen, dtype=torch.float64)        # one cell, 60 samples, d=4
    >>> y = (2 * X[0, :, 0] + 0.1 * torch.randn(60, generator=gen, dtype=torch.float64)).numpy()
    >>> g = np.arange(60)
    >>> out = fit_chunk_ridge(X, y, g, group_kfold(y, g, k=5, stratified=False), np.zeros((0, 60)),
    ...                       (0.1, 1.0, 10.0), inner_folds=3, seed=0, null_splits=5)
    >>> bool(np.corrcoef(out["scores"][0], y)[0, 1] > 0.99), out["null"].shape   # held-out predictions; no null
    (True, (1, 0, 60))
    """
    c, n, _ = X.shape
    A = torch.tensor(sorted(alphas), dtype=torch.float64)
    scores = torch.full((c, n), float("nan"), dtype=torch.float64)
    null = torch.full((c, len(perms), n), float("nan"), dtype=torch.float64)
    tr_r2, loga, fold_r2 = [], [], []
    for si, ((tr, te), feats) in enumerate(zip(splits, iter_fold_features(X, splits))):
        F_tr, F_te, lam = (t.double().cpu() for t in feats)
        y_tr = torch.as_tensor(y[tr], dtype=torch.float64)
        if len(A) > 1:
            inner = group_kfold(y[tr], groups[tr], k=inner_folds, seed=seed + si + 1, stratified=False)
            val = torch.zeros(c, len(A))
            for itr, ite in inner:
                K = F_tr[:, itr] @ F_tr[:, itr].transpose(1, 2)
                Kv = F_tr[:, ite] @ F_tr[:, itr].transpose(1, 2)
                H = torch.eye(len(itr), dtype=K.dtype) - 1.0 / len(itr)
                lam_i, Q = torch.linalg.eigh(H @ K @ H)
                yi = y_tr[itr]
                qy = Q.transpose(1, 2) @ (yi - yi.mean())[None, :, None]                 # [c, m, 1]
                # dual ridge with centring: alpha_vec = Q diag(1/(lam+a)) Q^T (y - mean); pred = Kc_v alpha + mean
                inv = 1.0 / (lam_i[:, None, :] + A[None, :, None])                         # [c, nA, m]
                dual = Q[:, None] @ (inv[..., None] * qy[:, None])                            # [c, nA, m, 1]
                Kvc = Kv - K.mean(1, keepdim=True) - Kv.mean(2, keepdim=True) + K.mean((1, 2), keepdim=True)
                pred = (Kvc[:, None] @ dual).squeeze(-1) + yi.mean()                         # [c, nA, n_val]
                val += _r2(pred, y_tr[ite].expand_as(pred)).float()
            best = torch.argmax(val, 1)
        else:
            best = torch.zeros(c, dtype=torch.long)
        W, b = fit_ridge(F_tr, lam, y_tr[None], A)                                           # [c, nA, r]
        Wb, bb = W[torch.arange(c), best], b[:, 0]
        s_te = torch.einsum("cr,cnr->cn", Wb, F_te) + bb[:, None]
        scores[:, te] = s_te
        fold_r2.append(_r2(s_te, torch.as_tensor(y[te], dtype=torch.float64).expand(c, -1)))
        tr_r2.append(_r2(torch.einsum("cr,cnr->cn", Wb, F_tr) + bb[:, None], y_tr.expand(c, -1)))
        loga.append(torch.log10(A[best]))
        if len(perms) and si < null_splits:
            yp = torch.as_tensor(perms[:, tr], dtype=torch.float64)
            ym = yp.mean(-1)
            Fy = torch.einsum("pn,cnr->cpr", yp - ym[:, None], F_tr)
            Wp = Fy / (lam[:, None, :] + A[best][:, None, None])
            null[:, :, te] = torch.bmm(Wp, F_te.transpose(1, 2)) + ym[None, :, None]
    return {"scores": scores.numpy(), "null": null.numpy(), "train_auroc": torch.stack(tr_r2, 1).mean(1).numpy(),
            "log10_C": torch.stack(loga, 1).mean(1).numpy(), "not_converged": np.zeros(c, bool),
            "fold_auroc": torch.stack(fold_r2, 1).numpy()}
