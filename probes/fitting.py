"""Per-chunk fitting for `probes.sweep`: for a chunk of cells sharing the same samples, run every outer fold,
the nested C selection, and the permutation/control refits, and return held-out scores.

    >>> out = fit_chunk_logreg(X, y, splits, perms, Cs=(1e-3, 1e-2), inner_folds=3, seed=0)
    >>> out["scores"].shape       # [cell, n]: held-out decision score of every sample
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float

from probes.batched import fit_logreg, fit_ridge, fold_features
from probes.metrics import _auroc_t
from probes.splits import group_kfold


def _inner_masks(y_tr: np.ndarray, g_tr: np.ndarray, k: int, seed: int, stratified: bool = True) -> np.ndarray:
    """0/1 train masks [k, n_tr] of group-aware inner folds (1 = used for fitting)."""
    inner = group_kfold(y_tr, g_tr, k=k, seed=seed + 1, stratified=stratified)
    masks = np.zeros((len(inner), len(y_tr)), dtype=np.float32)
    for i, (tr, _) in enumerate(inner):
        masks[i, tr] = 1
    return masks


def fit_chunk_logreg(X: Float[torch.Tensor, "cell n d"], y: np.ndarray, groups: np.ndarray,
                     splits: list[tuple[np.ndarray, np.ndarray]], perms: np.ndarray, Cs: tuple[float, ...],
                     inner_folds: int, seed: int, null_splits: int, tol: float, max_iter: int) -> dict:
    """Logistic probes for a chunk of cells. `perms` [n_perm, n] are relabelings refitted at each fold's chosen
    C; only the first `null_splits` splits get them (a final dev->test split does not).

    Returns dict: scores [c, n], null [c, n_perm, n], train_auroc [c], log10_C [c] (mean over splits of the
    chosen log10 C), fold_log10_C [c, n_splits], not_converged [c] bool, fold_auroc [c, n_splits].
    """
    c, n, _ = X.shape
    dev = X.device
    Cs_t = torch.tensor(sorted(Cs), dtype=X.dtype, device=dev)
    nC = len(Cs_t)
    scores = torch.full((c, n), float("nan"), dtype=torch.float64)
    null = torch.full((c, len(perms), n), float("nan"), dtype=torch.float64)
    train_auc, logC, fold_auc = [], [], []
    bad = torch.zeros(c, dtype=torch.bool)
    for si, (tr, te) in enumerate(splits):
        F_tr, F_te, lam = fold_features(X, tr, te)
        y_tr = torch.as_tensor(y[tr], dtype=X.dtype, device=dev)
        if nC > 1:
            masks = torch.as_tensor(_inner_masks(y[tr], groups[tr], inner_folds, seed + si), device=dev)
            k = masks.shape[0]
            full = torch.ones(1, len(tr), dtype=X.dtype, device=dev)
            S = torch.cat([masks, full]).repeat(nC, 1)                       # [nC*(k+1), n_tr]
            Cb = Cs_t.repeat_interleave(k + 1)
            W, b, info = fit_logreg(F_tr, lam, y_tr.expand(len(S), -1), S, Cb, max_iter=max_iter, tol=tol)
            bad |= ~info["converged"].all(1).cpu()
            M = (torch.bmm(W, F_tr.transpose(1, 2)) + b[..., None]).view(c, nC, k + 1, -1)
            val_w = (1 - S).view(nC, k + 1, -1)[:, :k]                      # [nC, k, n_tr]
            Mi = M[:, :, :k].double()
            val = _auroc_t(Mi, y_tr.double().expand_as(Mi), val_w.double().expand_as(Mi))  # [c, nC, k]
            mean_val = torch.nan_to_num(val, nan=0.5).mean(-1)
            best = torch.argmax(mean_val + 1e-9 * torch.arange(nC, 0, -1, dtype=mean_val.dtype), dim=1)  # ties->small C
            ci = best * (k + 1) + k
            Wb = W[torch.arange(c), ci]
            bb = b[torch.arange(c), ci]
            Cc = Cs_t[best]
        else:
            W, b, info = fit_logreg(F_tr, lam, y_tr[None], None, Cs_t, max_iter=max_iter, tol=tol)
            bad |= ~info["converged"].all(1).cpu()
            Wb, bb = W[:, 0], b[:, 0]
            Cc = Cs_t.expand(c)
        s_te = torch.einsum("cr,cnr->cn", Wb, F_te) + bb[:, None]
        s_tr = torch.einsum("cr,cnr->cn", Wb, F_tr) + bb[:, None]
        scores[:, te] = s_te.double().cpu()
        yt = torch.as_tensor(y[te], dtype=torch.float64)
        fold_auc.append(_auroc_t(s_te.double().cpu(), yt.expand(c, -1), torch.ones(c, len(te), dtype=torch.float64)))
        train_auc.append(_auroc_t(s_tr.double().cpu(), y_tr.double().cpu().expand(c, -1),
                                  torch.ones(c, len(tr), dtype=torch.float64)))
        logC.append(torch.log10(Cc).double().cpu())
        if len(perms) and si < null_splits:
            Yp = torch.as_tensor(perms[:, tr], dtype=X.dtype, device=dev)
            Cm = Cc[:, None].expand(c, len(perms))
            Wp, bp, infop = fit_logreg(F_tr, lam, Yp, None, Cm, max_iter=max_iter, tol=tol)
            null[:, :, te] = (torch.bmm(Wp, F_te.transpose(1, 2)) + bp[..., None]).double().cpu()
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
    Same return layout as fit_chunk_logreg (train_auroc holds train R^2, log10_C holds log10 alpha)."""
    c, n, _ = X.shape
    A = torch.tensor(sorted(alphas), dtype=torch.float64)
    scores = torch.full((c, n), float("nan"), dtype=torch.float64)
    null = torch.full((c, len(perms), n), float("nan"), dtype=torch.float64)
    tr_r2, loga, fold_r2 = [], [], []
    for si, (tr, te) in enumerate(splits):
        F_tr, F_te, lam = (t.double().cpu() for t in fold_features(X, tr, te))
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
