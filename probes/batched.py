"""Batched logistic and ridge regression for many (cell, fold, C, label-vector) problems at once, in torch.

The trick: with d features and n < d samples, an L2-penalised linear model only ever needs the n x n kernel of
the standardised training rows (representer theorem). Per (cell, outer fold) we

1. standardise with the TRAINING rows' mean and std (like sklearn's StandardScaler fitted in the fold),
2. form K = Xs_train Xs_train^T and Xs_test Xs_train^T (one batched matmul),
3. eigendecompose K = Q diag(lam) Q^T, giving exact "primal" coordinates F = Q sqrt(lam) (n_train x rank)
   in which ||w||^2 and every margin are the same as in the d-dim problem, and F^T F = diag(lam).

The logistic objective  C * sum_i s_i log(1 + exp(-y_i m_i)) + 1/2 ||w||^2  (sklearn's, intercept unpenalised)
is then solved for all problems together by preconditioned gradient steps with Nesterov momentum and adaptive
restart; the preconditioner diag(C lam / 4 + 1) is Boehning's bound on the Hessian, exact up to the factor
p(1-p) <= 1/4. Nested-CV inner folds are the same problem with 0/1 sample weights s.

    >>> F_tr, F_te, lam = fold_features(X, train_idx, test_idx)          # X: [cell, sample, d] float32 tensor
    >>> W, b, info = fit_logreg(F_tr, lam, Y, S, C)                        # Y, S: [problem, n_train]
    >>> test_scores = W @ F_te.transpose(1, 2) + b[..., None]              # [cell, problem, n_test]
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def standardize_stats(X_train: Float[Tensor, "cell n d"]) -> tuple[Tensor, Tensor]:
    """Mean and std (ddof=0) over training rows, computed in float64; zero-variance features get std 1
    (sklearn's StandardScaler rule)."""
    x = X_train.double()
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    scale = var.sqrt()
    tiny = 10 * torch.finfo(torch.float64).eps * (mu.abs() + 1)
    scale = torch.where(scale < tiny, torch.ones_like(scale), scale)
    return mu, scale


def fold_features(X: Float[Tensor, "cell n d"], train_idx: Tensor, test_idx: Tensor,
                  rel_tol: float = 1e-7) -> tuple[Tensor, Tensor, Tensor]:
    """Exact low-dimensional coordinates of the fold-standardised data (see module docstring).

    Returns F_train [cell, n_train, n_train], F_test [cell, n_test, n_train], lam [cell, n_train] (eigenvalues
    below rel_tol * max are dropped: their columns are zero).
    """
    tr = torch.as_tensor(train_idx, device=X.device)
    te = torch.as_tensor(test_idx, device=X.device)
    mu, scale = standardize_stats(X[:, tr])
    inv = (1.0 / scale).to(X.dtype)
    Xs_tr = (X[:, tr] - mu.to(X.dtype)) * inv
    Xs_te = (X[:, te] - mu.to(X.dtype)) * inv
    K_tr = Xs_tr @ Xs_tr.transpose(1, 2)
    K_te = Xs_te @ Xs_tr.transpose(1, 2)
    del Xs_tr, Xs_te
    K64 = K_tr.double()
    K64 = (K64 + K64.transpose(1, 2)) / 2
    lam_np, Q_np = np.linalg.eigh(K64.cpu().numpy())             # torch eigh is very slow on some MKL builds
    lam, Q = torch.as_tensor(lam_np, device=X.device), torch.as_tensor(Q_np, device=X.device)
    keep = lam > rel_tol * lam[:, -1:].clamp_min(1e-30)
    lam = torch.where(keep, lam, torch.zeros_like(lam))
    sq = lam.sqrt()
    F_tr = (Q * sq[:, None, :]).to(X.dtype)
    inv_sq = torch.where(keep, 1.0 / sq.clamp_min(1e-30), torch.zeros_like(sq))
    F_te = ((K_te.double() @ Q) * inv_sq[:, None, :]).to(X.dtype)
    return F_tr, F_te, lam.to(X.dtype)


def _expand(t: Tensor, c: int) -> Tensor:
    return t if t.dim() == 3 else t.unsqueeze(0).expand(c, *t.shape)


def fit_logreg(F: Float[Tensor, "cell n r"], lam: Float[Tensor, "cell r"],
               Y: Float[Tensor, "*cell problem n"], S: Float[Tensor, "*cell problem n"] | None,
               C: Float[Tensor, "*cell problem"], max_iter: int = 500, tol: float = 1e-4,
               ) -> tuple[Tensor, Tensor, dict]:
    """Solve many L2 logistic regressions on features F (one feature matrix per cell, many problems each).

    Y: 0/1 labels, S: 0/1 sample weights (None = all ones), C: inverse regularisation per problem.
    Returns W [cell, problem, r], b [cell, problem], info {"iterations", "converged" [cell, problem]}.
    Stops when no margin moves by more than `tol` (relative to the largest margin, if above 1) in one
    (unaccelerated) step.

    >>> W, b, info = fit_logreg(F_tr, lam, Y, None, torch.full((P,), 0.01))
    """
    c, n, r = F.shape
    Y = _expand(Y.to(F.dtype), c)
    P = Y.shape[1]
    S = torch.ones_like(Y) if S is None else _expand(S.to(F.dtype), c)
    C = C.to(F.dtype)
    C = C.unsqueeze(0).expand(c, P) if C.dim() == 1 else C
    rho = S.mean(-1, keepdim=True)                                   # fraction of rows used (inner CV masks)
    Hw = C[..., None] * rho * lam[:, None, :] / 4 + 1                # [c, P, r]
    Hb = (C * S.sum(-1) / 4).clamp_min(1e-12)                        # [c, P]
    Ft = F.transpose(1, 2)                                           # [c, r, n]
    W = torch.zeros(c, P, r, dtype=F.dtype, device=F.device)
    b = torch.zeros(c, P, dtype=F.dtype, device=F.device)
    # start the intercept at the weighted log-odds
    pbar = ((S * Y).sum(-1) / S.sum(-1).clamp_min(1)).clamp(1e-6, 1 - 1e-6)
    b = torch.log(pbar / (1 - pbar))
    M = b[..., None].expand(c, P, n).clone()                         # margins at V
    Vw, Vb = W, b
    Xw, Xb, XM = W, b, M                                             # previous iterate x_k and its margins
    t = torch.ones(c, P, dtype=F.dtype, device=F.device)
    converged = torch.zeros(c, P, dtype=torch.bool, device=F.device)
    it = 0
    for it in range(1, max_iter + 1):
        R = S * (torch.sigmoid(M) - Y)                                # [c, P, n]
        gw = C[..., None] * torch.bmm(R, F) + Vw                      # [c, P, r]
        gb = C * R.sum(-1)
        dw, db = -gw / Hw, -gb / Hb
        dM = torch.bmm(dw, Ft) + db[..., None]                        # margin change of the plain step
        Nw, Nb, NM = Vw + dw, Vb + db, M + dM                         # x_{k+1}
        step = dM.abs().amax(-1)
        converged = step < tol * M.abs().amax(-1).clamp_min(1)
        if bool(converged.all()):
            Xw, Xb, XM = Nw, Nb, NM
            break
        # adaptive restart (O'Donoghue & Candes): momentum off where the step points uphill
        uphill = ((gw * (Nw - Xw)).sum(-1) + gb * (Nb - Xb)) > 0
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        beta = torch.where(uphill, torch.zeros_like(t), (t - 1) / t_new)
        t = torch.where(uphill, torch.ones_like(t), t_new)
        Vw = Nw + beta[..., None] * (Nw - Xw)
        Vb = Nb + beta * (Nb - Xb)
        M = NM + beta[..., None] * (NM - XM)
        Xw, Xb, XM = Nw, Nb, NM
    return Xw, Xb, {"iterations": it, "converged": converged}


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

