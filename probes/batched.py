"""Batched logistic and ridge regression for many (cell, fold, C, label-vector) problems at once, in torch.

The trick: with d features and n < d samples, an L2-penalised linear model only ever needs the n x n kernel of
the standardised training rows (representer theorem). Per (cell, outer fold) we

1. standardise with the TRAINING rows' mean and std (like sklearn's StandardScaler fitted in the fold),
2. form K = Xs_train Xs_train^T and Xs_test Xs_train^T (one batched matmul),
3. eigendecompose K = Q diag(lam) Q^T, giving exact "primal" coordinates F = Q sqrt(lam) (n_train x rank)
   in which ||w||^2 and every margin are the same as in the d-dim problem, and F^T F = diag(lam).

The logistic objective  C * sum_i s_i log(1 + exp(-y_i m_i)) + 1/2 ||w||^2  (sklearn's, intercept unpenalised)
is then solved for all problems together by preconditioned gradient steps with Nesterov momentum and adaptive
restart. The preconditioner diag(C kappa lam + 1) bounds the Hessian C F^T diag(p(1-p)) F + I at the current
point with kappa = max_i p_i(1-p_i): Boehning's global bound uses kappa = 1/4, which at large C (confident fits,
p(1-p) << 1/4) makes steps ~25x too short (97 vs 32 steps at C=10, benchmarks/results/probes.md). The local
bound holds only near the current point; where a step overshoots (momentum restart), kappa gets a floor of twice
its value there, which stops the cycling seen at tight tolerances and C=1e4. Nested-CV inner folds are the same
problem with 0/1 sample weights s.

    >>> F_tr, F_te, lam = fold_features(X, train_idx, test_idx)          # X: [cell, sample, d] float32 tensor
    >>> W, b, info = fit_logreg(F_tr, lam, Y, S, C)                        # Y, S: [problem, n_train]
    >>> test_scores = W @ F_te.transpose(1, 2) + b[..., None]              # [cell, problem, n_test]
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def safe_scale(var: Tensor, mu: Tensor, n: int) -> Tensor:
    """std = sqrt(var), or 1 where the feature is constant up to rounding (sklearn's `_is_constant_feature`
    bound)."""
    eps = torch.finfo(torch.float64).eps
    bound = n * eps * var + (n * mu.abs() * eps) ** 2
    return torch.where(var <= bound, torch.ones_like(var), var.clamp_min(0).sqrt())


def fold_features(X: Float[Tensor, "cell n d"], train_idx: np.ndarray, test_idx: np.ndarray,
                  rel_tol: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    """Exact low-dimensional coordinates of the fold-standardised data (see module docstring).

    Returns F_train [cell, n_train, n_train], F_test [cell, n_test, n_train], lam [cell, n_train] (eigenvalues
    below rel_tol * max are dropped: their columns are zero). For several folds use `iter_fold_features`.

    >>> F_tr, F_te, lam = fold_features(torch.randn(2, 100, 300), np.arange(80), np.arange(80, 100))
    """
    return next(iter_fold_features(X, [(train_idx, test_idx)], rel_tol))


def iter_fold_features(X: Float[Tensor, "cell n d"], splits: list[tuple[np.ndarray, np.ndarray]],
                       rel_tol: float = 1e-6) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """`fold_features` of every (train, test) split, sharing work across folds. X is centred once (a shift that
    each fold's standardisation removes anyway; it keeps the float32 sums below exact enough), X^2 is formed
    once, and each fold's mean and variance are two matrix-vector products with the fold's row indicator.

    With mu, s the fold's training mean and std and B = (X_train - mu) / s^2 (the gathered training rows,
    modified in place): G = (X - mu) B^T = X B^T - mu B^T, one matmul for the train-train and test-train blocks.

    >>> for F_tr, F_te, lam in iter_fold_features(X, splits): ...
    """
    X0 = X - X.mean(1, keepdim=True)
    X0sq = X0 * X0
    for train_idx, test_idx in splits:
        tr = torch.as_tensor(train_idx, device=X.device)
        te = torch.as_tensor(test_idx, device=X.device)
        ind = torch.zeros(1, X.shape[1], dtype=X.dtype, device=X.device)
        ind[0, tr] = 1.0 / len(tr)
        ind = ind.expand(X.shape[0], 1, -1)
        mu = torch.bmm(ind, X0)                                       # [cell, 1, d]
        var = torch.bmm(ind, X0sq) - mu * mu
        B = X0[:, tr]
        B.sub_(mu).mul_(safe_scale(var, mu, len(tr)).pow(-2))
        G = torch.bmm(X0, B.transpose(1, 2))                           # [cell, n, n_train]: train and test rows
        G -= torch.bmm(mu, B.transpose(1, 2))
        del B
        K = G[:, tr]
        lam, Q = _eigh((K + K.transpose(1, 2)) / 2)
        keep = lam > rel_tol * lam[:, -1:].clamp_min(1e-30)
        lam = torch.where(keep, lam, torch.zeros_like(lam))
        sq = lam.sqrt()
        inv_sq = torch.where(keep, 1.0 / sq.clamp_min(1e-30), torch.zeros_like(sq))
        yield Q * sq[:, None, :], (G[:, te] @ Q) * inv_sq[:, None, :], lam


def _eigh(K: Tensor) -> tuple[Tensor, Tensor]:
    """Batched symmetric eigendecomposition in K's dtype (ascending eigenvalues)."""
    if K.device.type == "cpu" and K.dtype == torch.float64:
        lam, Q = np.linalg.eigh(K.numpy())          # LAPACK dsyevd: faster than torch's float64 path on CPU
        return torch.from_numpy(lam), torch.from_numpy(Q)
    return torch.linalg.eigh(K)


def _absmax(x: Tensor) -> Tensor:
    """max |x| over the last axis (faster on CPU than abs().amax() or an inf-norm)."""
    return torch.maximum(x.amax(-1), -x.amin(-1))


def _expand(t: Tensor, c: int) -> Tensor:
    return t if t.dim() == 3 else t.unsqueeze(0).expand(c, *t.shape)


def fit_logreg(F: Float[Tensor, "cell n r"], lam: Float[Tensor, "cell r"],
               Y: Float[Tensor, "*cell problem n"], S: Float[Tensor, "*cell problem n"] | None,
               C: Float[Tensor, "*cell problem"], max_iter: int = 500,
               tol: float | Float[Tensor, " problem"] = 1e-4, check_every: int = 4,
               curvature: str = "local") -> tuple[Tensor, Tensor, dict]:
    """Solve many L2 logistic regressions on features F (one feature matrix per cell, many problems each).

    Y: 0/1 labels, S: 0/1 sample weights (None = all ones), C: inverse regularisation per problem (or per cell and
    problem). Returns W [cell, problem, r], b [cell, problem], info {"iterations", "converged" [cell, problem]}.
    A problem has converged when none of its margins moves by more than `tol` (a float or one per problem;
    relative to the largest margin, if above 1) in one unaccelerated step. Every `check_every` steps the batch
    shrinks: cells whose problems have all converged, and problems converged in every cell, stop being computed
    (strongly regularised problems converge in a few steps, weakly regularised ones need many more).
    `curvature`: "local" (kappa = max_i p_i(1-p_i) at the current point, floored at twice its value where a step
    overshot) or "boehning" (kappa = 1/4 throughout).

    >>> W, b, info = fit_logreg(F_tr, lam, Y, None, torch.full((P,), 0.01))
    """
    if curvature not in ("local", "boehning"):
        raise ValueError(f"curvature={curvature!r}: use 'local' or 'boehning'")
    c, n, r = F.shape
    dt, dev = F.dtype, F.device
    Y = _expand(Y.to(dt), c)
    P = Y.shape[1]
    masked = S is not None
    S = torch.ones_like(Y) if S is None else _expand(S.to(dt), c)
    C = C.to(dt)
    C = C.unsqueeze(0).expand(c, P) if C.dim() == 1 else C
    tol_t = torch.as_tensor(tol, dtype=dt, device=dev).expand(P).unsqueeze(0).expand(c, P)
    out_w = torch.zeros(c, P, r, dtype=dt, device=dev)
    out_b = torch.zeros(c, P, dtype=dt, device=dev)
    converged = torch.zeros(c, P, dtype=torch.bool, device=dev)
    ci, pj = torch.arange(c, device=dev), torch.arange(P, device=dev)    # cells / problems still computed

    n_used = S.sum(-1)
    SC = S * C[..., None]                                            # C x sample weight: gradients come scaled
    pbar = ((S * Y).sum(-1) / n_used.clamp_min(1)).clamp(1e-6, 1 - 1e-6)
    Xb = torch.log(pbar / (1 - pbar))                                # start the intercept at the log-odds
    Xw = torch.zeros(c, P, r, dtype=dt, device=dev)
    XM = Xb[..., None].expand(c, P, n).clone()                       # margins of the iterate x_k
    Vw, Vb, M = Xw, Xb, XM                                           # extrapolated point and its margins
    t = torch.ones(c, P, dtype=dt, device=dev)
    Fa, Ft, lam_a = F, F.transpose(1, 2), lam
    one = torch.ones((), dtype=dt, device=dev)
    floor = torch.zeros_like(t)                                      # kappa's floor, raised where steps overshoot
    it = 0
    for it in range(1, max_iter + 1):
        p = torch.sigmoid(M)
        if curvature == "local":                                      # local curvature bound, <= Boehning's 1/4
            q = torch.addcmul(p, p, p, value=-1)                      # p (1 - p)
            kappa = torch.maximum((q * S if masked else q).amax(-1), floor).clamp(1e-4, 0.25)
        else:
            kappa = torch.full_like(t, 0.25)
        R = (p - Y) * SC                                              # [c, P, n]
        gw = torch.baddbmm(Vw, R, Fa)                                 # gradient [c, P, r]
        gb = R.sum(-1)
        ck = C * kappa
        dw = gw / torch.addcmul(one, ck[..., None], lam_a[:, None, :])   # preconditioned step (negated)
        db = gb / (ck * n_used).clamp_min(1e-12)
        dM = torch.baddbmm(db[..., None].expand(-1, -1, M.shape[-1]), dw, Ft)   # its margin change (negated)
        Nw, Nb, NM = Vw - dw, Vb - db, M - dM                         # x_{k+1}
        conv = _absmax(dM) < tol_t * _absmax(M).clamp_min(1)
        finished = bool(conv.all()) or it == max_iter
        if finished or it % check_every == 0:
            out_w[ci[:, None], pj] = Nw
            out_b[ci[:, None], pj] = Nb
            converged[ci[:, None], pj] = conv
            if finished:
                break
        # adaptive restart (O'Donoghue & Candes): momentum off where the step points uphill
        Dw, Db = Nw - Xw, Nb - Xb
        uphill = (torch.linalg.vecdot(gw, Dw) + gb * Db) > 0
        floor = torch.where(uphill, (2 * kappa).clamp(max=0.25), floor)  # the bound was too optimistic there
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        beta = torch.where(uphill, torch.zeros_like(t), (t - 1) / t_new)
        t = torch.where(uphill, torch.ones_like(t), t_new)
        Vw = torch.addcmul(Nw, beta[..., None], Dw)
        Vb = Nb + beta * Db
        M = torch.addcmul(NM, beta[..., None], NM - XM)
        Xw, Xb, XM = Nw, Nb, NM
        if it % check_every == 0:
            kc, kp = ~conv.all(1), ~conv.all(0)
            if int(kc.sum()) * int(kp.sum()) < 0.8 * len(ci) * len(pj):
                ci, pj = ci[kc], pj[kp]
                Fa, lam_a = Fa[kc], lam_a[kc]
                Ft = Fa.transpose(1, 2)
                Y, S, C, SC, n_used, tol_t, t, floor, Vw, Vb, M, Xw, Xb, XM = (
                    a[kc][:, kp] for a in (Y, S, C, SC, n_used, tol_t, t, floor, Vw, Vb, M, Xw, Xb, XM))
    return out_w, out_b, {"iterations": it, "converged": converged}


def fit_ridge(F: Float[Tensor, "cell n r"], lam: Float[Tensor, "cell r"], y: Float[Tensor, "*cell problem n"],
              alphas: Float[Tensor, " problem"]) -> tuple[Tensor, Tensor]:
    """Closed-form ridge (unpenalised intercept) in the eigen-coordinates of a centred kernel, all samples
    weighted 1: w_j = F_j^T (y - mean y) / (lam_j + alpha). Returns W [cell, problem, r], b [cell, problem]."""
    c = F.shape[0]
    y = _expand(y.to(F.dtype), c)
    ym = y.mean(-1)
    Fy = torch.bmm(y - ym[..., None], F)                                   # [c, P, r]
    W = Fy / (lam[:, None, :] + alphas.to(F.dtype)[None, :, None])
    return W, ym

