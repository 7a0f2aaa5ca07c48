"""Batched logistic and ridge regression for many (cell, fold, C, label-vector) problems at once, in torch.

The trick: with d features and n < d samples, an L2-penalised linear model only ever needs the n x n kernel of
the standardised training rows (representer theorem). Per (cell, outer fold) we

1. standardise with the TRAINING rows' mean and std (exactly scikit-learn's StandardScaler fitted in the fold),
2. form K = Xs_train Xs_train^T (a symmetric rank-k update) and Xs_test Xs_train^T,
3. eigendecompose K = Q diag(lam) Q^T, giving exact "primal" coordinates F = Q sqrt(lam) (n_train x rank)
   in which ||w||^2 and every margin are the same as in the d-dim problem, and F^T F = diag(lam).

The logistic objective  C * sum_i s_i log(1 + exp(-y_i m_i)) + 1/2 ||w||^2  (scikit-learn's, intercept
unpenalised) is then solved for all problems together by L-BFGS (4 remembered steps) whose initial inverse Hessian
is the Jacobi preconditioner 1 / (C sum_i s_i p_i (1 - p_i) F_ij^2 + 1) (the Hessian's diagonal in the eigenbasis,
refreshed every 4 steps), with an exact line search along each direction (two Newton steps on the one-dimensional
convex objective: elementwise work, no extra matmul). Against the previous engine (Nesterov steps preconditioned by
a curvature bound) it takes 2.5-3x fewer steps at the same tolerance and is more accurate at a given tolerance
(benchmarks/results/probes.md), which matters for the nested C search: its choice hangs on single pairs of a
validation AUROC. Nested-CV inner folds are the same problem with 0/1 sample weights s.

    >>> X = torch.randn(2, 60, 100)                                        # [cell, sample, d]
    >>> F_tr, F_te, lam = fold_features(X, np.arange(40), np.arange(40, 60))
    >>> W, b, info = fit_logreg(F_tr, torch.tensor([[0.0, 1.0] * 20]), None, torch.tensor([0.1]))
    >>> (W @ F_te.transpose(1, 2) + b[..., None]).shape                    # held-out scores [cell, problem, n_test]
    torch.Size([2, 1, 20])
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def safe_scale(var: Tensor, mu: Tensor, n: int) -> Tensor:
    """std = sqrt(var), or 1 where the feature is constant up to rounding (sklearn's `_is_constant_feature`
    bound).

    >>> safe_scale(torch.tensor([4.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 3.0], dtype=torch.float64), 10)
    tensor([2., 1.], dtype=torch.float64)
    """
    eps = torch.finfo(torch.float64).eps
    bound = n * eps * var + (n * mu.abs() * eps) ** 2
    return torch.where(var <= bound, torch.ones_like(var), var.clamp_min(0).sqrt())


def fold_features(X: Float[Tensor, "cell n d"], train_idx: np.ndarray, test_idx: np.ndarray,
                  rel_tol: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    """Exact low-dimensional coordinates of the fold-standardised data (see module docstring).

    Returns F_train [cell, n_train, n_train], F_test [cell, n_test, n_train], lam [cell, n_train] (eigenvalues
    below rel_tol * max are dropped: their columns are zero). For several folds use `iter_fold_features`.

    >>> F_tr, F_te, lam = fold_features(torch.randn(2, 100, 300), np.arange(80), np.arange(80, 100))
    >>> F_tr.shape, F_te.shape, lam.shape
    (torch.Size([2, 80, 80]), torch.Size([2, 20, 80]), torch.Size([2, 80]))
    """
    return next(iter_fold_features(X, [(train_idx, test_idx)], rel_tol))


def iter_fold_features(X: Float[Tensor, "cell n d"], splits: list[tuple[np.ndarray, np.ndarray]],
                       rel_tol: float = 1e-6) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """`fold_features` of every (train, test) split. Per fold the training rows are standardised explicitly,
    H = (X_train - mu) / s with the fold's mean and std (scikit-learn's StandardScaler in that fold; a feature
    constant there gets s = 1, as in scikit-learn), K = H H^T is formed by a symmetric rank-k update (half the work
    of a matmul, on CPU) and the test rows' kernel against H by one matmul. The rows are shifted by the fold's
    first training row before the mean is taken: a constant feature then stays exactly 0 in float32, and a large
    common offset of a residual-stream dimension costs no precision.

    >>> splits = [(np.arange(20, 100), np.arange(20)), (np.arange(80), np.arange(80, 100))]
    >>> [F_tr.shape[1] for F_tr, F_te, lam in iter_fold_features(torch.randn(2, 100, 300), splits)]
    [80, 80]
    """
    c, _, d = X.shape
    buf = torch.empty(c * max(len(tr) for tr, _ in splits) * d, dtype=X.dtype, device=X.device)
    for train_idx, test_idx in splits:
        n_tr = len(train_idx)
        H = buf[:c * n_tr * d].view(c, n_tr, d)          # one buffer for every fold: no page faults per fold
        torch.index_select(X, 1, torch.as_tensor(train_idx, device=X.device), out=H)
        first = H[:, :1].clone()
        H -= first
        mu = H.mean(1, keepdim=True)
        H -= mu
        inv = safe_scale(_sum_squares(H) / n_tr, mu + first, n_tr).reciprocal_()
        H *= inv
        T = (X[:, torch.as_tensor(test_idx, device=X.device)] - first - mu) * inv      # [cell, n_test, d]
        lam, Q = _kernel_eigh(H)                                      # K = H H^T = Q diag(lam) Q^T
        G = _matmul_t(T, H)                                           # test rows' kernel T H^T
        del T
        keep = lam > rel_tol * lam[:, -1:].clamp_min(1e-30)
        lam = torch.where(keep, lam, torch.zeros_like(lam))
        sq = lam.sqrt()
        inv_sq = torch.where(keep, 1.0 / sq.clamp_min(1e-30), torch.zeros_like(sq))
        yield Q * sq[:, None, :], (G @ Q) * inv_sq[:, None, :], lam


def _sum_squares(H: Tensor) -> Tensor:
    """sum over rows of H^2, [cell, 1, d], accumulated in float64 (numpy's einsum on CPU: no temporary, ~5x faster
    than torch's strided reduction here)."""
    if H.device.type == "cpu":
        s = np.einsum("cnd,cnd->cd", H.numpy(), H.numpy(), dtype=np.float64)
        return torch.from_numpy(s).to(H.dtype).unsqueeze(1)
    return H.square().sum(1, keepdim=True)


def _kernel_eigh(H: Tensor) -> tuple[Tensor, Tensor]:
    """Eigendecomposition (ascending) of K = H H^T per cell. On CPU the kernel is numpy's `h @ h.T` (OpenBLAS
    syrk: half a matmul's work), at torch's thread count, then torch.linalg.eigh on the batch; both release the GIL,
    so `probes.sweep` can fit chunks of cells in parallel threads (scipy's syrk/syevd wrappers hold it).
    Elsewhere torch.bmm + torch.linalg.eigh."""
    if H.device.type != "cpu" or H.dtype not in (torch.float32, torch.float64):
        return torch.linalg.eigh(torch.bmm(H, H.transpose(1, 2)))
    h = H.numpy()
    K = torch.empty(H.shape[0], H.shape[1], H.shape[1], dtype=H.dtype)
    with _blas_threads():
        for i in range(len(h)):
            np.matmul(h[i], h[i].T, out=K[i].numpy())      # the same buffer transposed: numpy calls syrk
    return torch.linalg.eigh(K)


def _matmul_t(T: Tensor, H: Tensor) -> Tensor:
    """T H^T per cell (numpy's OpenBLAS on CPU, at torch's thread count)."""
    if T.device.type != "cpu":
        return torch.bmm(T, H.transpose(1, 2))
    with _blas_threads():
        return torch.from_numpy(np.matmul(T.numpy(), H.numpy().transpose(0, 2, 1)))


_CONTROLLER: list = []


def _blas_threads():
    """A context in which numpy's BLAS uses torch's thread count (torch.set_num_threads is the one
    knob of the sweep; BLAS keeps its own pool otherwise)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=torch.get_num_threads(), user_api="blas")


def _absmax(x: Tensor) -> Tensor:
    """max |x| over the last axis (faster on CPU than abs().amax() or an inf-norm)."""
    return torch.maximum(x.amax(-1), -x.amin(-1))


def _expand(t: Tensor, c: int) -> Tensor:
    return t if t.dim() == 3 else t.unsqueeze(0).expand(c, *t.shape)


def fit_logreg(F: Float[Tensor, "cell n r"], Y: Float[Tensor, "*cell problem n"],
               S: Float[Tensor, "*cell problem n"] | None, C: Float[Tensor, "*cell problem"], max_iter: int = 1000,
               tol: float | Float[Tensor, " problem"] = 1e-4, check_every: int = 4, memory: int = 4,
               precond_every: int = 4) -> tuple[Tensor, Tensor, dict]:
    """Solve many L2 logistic regressions on features F (one feature matrix per cell, many problems each).

    Y: 0/1 labels, S: 0/1 sample weights (None = all ones), C: inverse regularisation per problem (or per cell and
    problem). Returns W [cell, problem, r], b [cell, problem], info {"iterations", "converged" [cell, problem]}.
    Batched L-BFGS (`memory` pairs) with an exact line search and a Jacobi preconditioner (module docstring).
    A problem has converged when none of its margins moves by more than `tol` (a float or one per problem;
    relative to the largest margin, if above 1) in one step. Every `check_every` steps the batch shrinks: cells
    whose problems have all converged, and problems converged in every cell, stop being computed.

    >>> F_tr, F_te, lam = fold_features(torch.randn(2, 60, 100), np.arange(40), np.arange(40, 60))
    >>> Y = torch.tensor([[0.0, 1.0] * 20, [1.0, 0.0] * 20])                    # two label vectors
    >>> W, b, info = fit_logreg(F_tr, Y, None, torch.tensor([0.01, 1.0]))
    >>> W.shape, bool(info["converged"].all())
    (torch.Size([2, 2, 40]), True)
    """
    c, n, r = F.shape
    dt, dev = F.dtype, F.device
    Y = _expand(Y.to(dt), c)
    P = Y.shape[1]
    S = torch.ones_like(Y) if S is None else _expand(S.to(dt), c)
    C = C.to(dt)
    C = C.unsqueeze(0).expand(c, P) if C.dim() == 1 else C
    tol_t = torch.as_tensor(tol, dtype=dt, device=dev).expand(P).unsqueeze(0).expand(c, P)
    out_w = torch.zeros(c, P, r, dtype=dt, device=dev)
    out_b = torch.zeros(c, P, dtype=dt, device=dev)
    converged = torch.zeros(c, P, dtype=torch.bool, device=dev)
    ci, pj = torch.arange(c, device=dev), torch.arange(P, device=dev)    # cells / problems still computed

    SC = S * C[..., None]                                            # C x sample weight: gradients come scaled
    pbar = ((S * Y).sum(-1) / S.sum(-1).clamp_min(1)).clamp(1e-6, 1 - 1e-6)
    b = torch.log(pbar / (1 - pbar))                                 # start the intercept at the log-odds
    w = torch.zeros(c, P, r, dtype=dt, device=dev)
    M = b[..., None].expand(c, P, n).clone()                         # margins
    Fa, F2 = F, F * F
    p = torch.sigmoid(M)
    R = (p - Y) * SC
    q = torch.addcmul(p, p, p, value=-1).mul_(SC)                    # C s p (1 - p): the loss's curvature
    gw, gb = torch.bmm(R, Fa), R.sum(-1)                             # gradient (w = 0)
    hist: list[list[Tensor]] = []                                    # [sw, sb, yw, yb, rho] per remembered step
    done = torch.zeros(c, P, dtype=torch.bool, device=dev)          # a problem stops at its first small step
    it = 0
    for it in range(1, max_iter + 1):
        if (it - 1) % precond_every == 0:                            # Jacobi: the Hessian's diagonal in F's basis
            Dw = torch.baddbmm(torch.ones_like(gw), q, F2).reciprocal_()
            Db = q.sum(-1).clamp_min(1e-12).reciprocal_()
        dw, db = _two_loop(gw, gb, Dw, Db, hist)
        dM = torch.baddbmm(db[..., None].expand(-1, -1, n), dw, Fa.transpose(1, 2))   # margin change per unit step
        al = _line_search(M, dM, R, q, Y, SC, w, dw).masked_fill_(done, 0)    # converged problems stay put
        step = dM.mul_(al[..., None])
        M += step
        sw, sb = dw.mul_(al[..., None]), db * al
        w, b = w + sw, b + sb
        p = torch.sigmoid(M)
        R = (p - Y) * SC
        q = torch.addcmul(p, p, p, value=-1).mul_(SC)
        ngw, ngb = torch.baddbmm(w, R, Fa), R.sum(-1)
        yw, yb = ngw - gw, ngb - gb
        sy = torch.linalg.vecdot(sw, yw) + sb * yb
        hist.append([sw, sb, yw, yb, torch.where(sy > 1e-30, 1.0 / sy.clamp_min(1e-30), torch.zeros_like(sy))])
        if len(hist) > memory:
            hist.pop(0)
        gw, gb = ngw, ngb
        done |= _absmax(step) < tol_t * _absmax(M).clamp_min(1)
        conv = done
        finished = bool(conv.all()) or it == max_iter
        if finished or it % check_every == 0:
            out_w[ci[:, None], pj] = w
            out_b[ci[:, None], pj] = b
            converged[ci[:, None], pj] = conv
            if finished:
                break
            kc, kp = ~conv.all(1), ~conv.all(0)
            if int(kc.sum()) * int(kp.sum()) < 0.8 * len(ci) * len(pj):
                ci, pj = ci[kc], pj[kp]
                Fa, F2 = Fa[kc], F2[kc]
                Y, SC, tol_t, w, b, M, q, R, gw, gb, Dw, Db, done = (
                    a[kc][:, kp] for a in (Y, SC, tol_t, w, b, M, q, R, gw, gb, Dw, Db, done))
                hist = [[a[kc][:, kp] for a in h] for h in hist]
    return out_w, out_b, {"iterations": it, "converged": converged}


def _two_loop(gw: Tensor, gb: Tensor, Dw: Tensor, Db: Tensor, hist: list[list[Tensor]]) -> tuple[Tensor, Tensor]:
    """L-BFGS direction -H g (w and intercept parts), H0 = the Jacobi preconditioner, from the remembered steps."""
    dw, db = -gw, -gb
    alphas = []
    for sw, sb, yw, yb, rho in reversed(hist):
        a = rho * (torch.linalg.vecdot(sw, dw) + sb * db)
        alphas.append(a)
        dw = torch.addcmul(dw, a[..., None], yw, value=-1)
        db = db - a * yb
    dw, db = dw * Dw, db * Db
    for (sw, sb, yw, yb, rho), a in zip(hist, reversed(alphas)):
        e = a - rho * (torch.linalg.vecdot(yw, dw) + yb * db)
        dw = torch.addcmul(dw, e[..., None], sw)
        db = db + e * sb
    return dw, db


def _line_search(M: Tensor, dM: Tensor, R: Tensor, q: Tensor, Y: Tensor, SC: Tensor, w: Tensor,
                 dw: Tensor) -> Tensor:
    """Step length along (dw, dM) per problem, for the objective restricted to the line (convex in the step a):
    Newton's step from 0, where slope and curvature are known from R = (p - Y) C s and q = p (1 - p) C s, then one
    Newton refinement from there; where the refinement overshoots below 0, the secant between the slopes at 0 and
    at the first step. 0 where the direction does not descend (s0 >= 0: at float precision, the end of the road).
    Elementwise work only: the margins along the line are M + a dM."""
    wd, dd = torch.linalg.vecdot(w, dw), torch.linalg.vecdot(dw, dw)
    dM2 = dM * dM
    s0 = torch.linalg.vecdot(R, dM) + wd
    a1 = (-s0 / (torch.linalg.vecdot(q, dM2) + dd).clamp_min(1e-30)).clamp_min(0)
    pa = torch.sigmoid(torch.addcmul(M, a1[..., None], dM))
    s1 = torch.linalg.vecdot((pa - Y).mul_(SC), dM) + wd + a1 * dd
    c1 = torch.linalg.vecdot(torch.addcmul(pa, pa, pa, value=-1).mul_(SC), dM2) + dd
    a2 = a1 - s1 / c1.clamp_min(1e-30)
    secant = a1 * s0 / (s0 - s1).clamp_min(1e-30) * (s0 < 0)
    return torch.where(a2 > 0, a2, secant.clamp_min(0))


def fit_ridge(F: Float[Tensor, "cell n r"], lam: Float[Tensor, "cell r"], y: Float[Tensor, "*cell problem n"],
              alphas: Float[Tensor, " problem"]) -> tuple[Tensor, Tensor]:
    """Closed-form ridge (unpenalised intercept) in the eigen-coordinates of a centred kernel, all samples
    weighted 1: w_j = F_j^T (y - mean y) / (lam_j + alpha). Returns W [cell, problem, r], b [cell, problem].

    >>> F = torch.eye(3, dtype=torch.float64)[None]                  # one cell, 3 samples, 3 coordinates
    >>> W, b = fit_ridge(F, torch.ones(1, 3, dtype=torch.float64), torch.tensor([[1.0, 2.0, 3.0]]),
    ...                  torch.tensor([0.0, 1.0]))                   # alphas 0 and 1
    >>> W[0].tolist(), b.tolist()                                    # (y - 2) / (1 + alpha)
    ([[-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5]], [[2.0]])
    """
    c = F.shape[0]
    y = _expand(y.to(F.dtype), c)
    ym = y.mean(-1)
    Fy = torch.bmm(y - ym[..., None], F)                                   # [c, P, r]
    W = Fy / (lam[:, None, :] + alphas.to(F.dtype)[None, :, None])
    return W, ym

