"""Probe methods with the scikit-learn estimator interface (fit / decision_function / predict / predict_proba).

These are the reference implementations (LogisticProbe is plain scikit-learn) that the batched sweep is tested
against, and they are what `probes.sweep(method="diffmean" | "lda" | "lat")` fits cell by cell.

    >>> import numpy as np
    >>> from probes.methods import LogisticProbe, DiffMeanProbe
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 40), np.repeat(np.arange(40), 2)           # 40 pairs
    >>> X = rng.normal(size=(80, 5)); X[:, 0] += 2 * y                      # the label along feature 0
    >>> p = LogisticProbe(Cs=(1e-2, 1.0)).fit(X[:60], y[:60], groups=g[:60])    # C by group-aware inner CV
    >>> p.C_, float((p.predict(X[60:]) == y[60:]).mean())
    (1.0, 0.85)
    >>> float((DiffMeanProbe().fit(X[:60], y[:60]).predict(X[60:]) == y[60:]).mean())
    0.85
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes.splits import group_kfold

DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class _Linear(BaseEstimator, ClassifierMixin):
    """Shared predict/predict_proba for probes with a linear decision function."""

    classes_ = np.array([0, 1])

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(int)

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.stack([1 - p, p], 1)


class LogisticProbe(_Linear):
    """StandardScaler + L2 LogisticRegression, C chosen by group-aware inner CV (AUROC), scaling fitted per fold.

    With one value in Cs there is no inner CV. `groups` default: every sample its own group.

    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> p = LogisticProbe(Cs=(1.0,)).fit(X, y)            # one C: no inner CV
    >>> p.C_, p.predict(X).tolist(), p.predict_proba(X).shape
    (1.0, [0, 0, 1, 1], (4, 2))
    """

    def __init__(self, Cs: tuple[float, ...] = DEFAULT_CS, inner_folds: int = 3, seed: int = 0,
                 tol: float = 1e-8, max_iter: int = 10000):
        self.Cs, self.inner_folds, self.seed, self.tol, self.max_iter = Cs, inner_folds, seed, tol, max_iter

    def _pipe(self, C):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=self.tol, max_iter=self.max_iter))

    def fit(self, X: Float[np.ndarray, "n d"], y, groups=None) -> LogisticProbe:
        y = np.asarray(y)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        Cs = sorted(self.Cs)
        if len(Cs) > 1:
            folds = group_kfold(y, groups, k=self.inner_folds, seed=self.seed + 1)
            val = [np.mean([roc_auc_score(y[te], self._pipe(C).fit(X[tr], y[tr]).decision_function(X[te]))
                            for tr, te in folds]) for C in Cs]
            self.cv_auroc_ = np.array(val)
            self.C_ = Cs[int(np.argmax(val))]
        else:
            self.C_ = Cs[0]
        self.pipeline_ = self._pipe(self.C_).fit(X, y)
        return self

    def decision_function(self, X):
        return self.pipeline_.decision_function(X)


class DiffMeanProbe(_Linear):
    """Difference of class means (Marks & Tegmark mass-mean probe): w = mean(X|1) - mean(X|0), threshold at the
    midpoint of the class means.

    >>> p = DiffMeanProbe().fit(np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]]), np.array([0, 0, 1, 1]))
    >>> p.coef_.tolist(), p.intercept_, p.decision_function(np.array([[3.0, 2.0]])).tolist()   # w = means' difference
    ([4.0, 2.0], -16.0, [0.0])
    """

    def fit(self, X, y, groups=None) -> DiffMeanProbe:
        y = np.asarray(y)
        m1, m0 = X[y == 1].mean(0), X[y == 0].mean(0)
        self.coef_ = m1 - m0
        self.intercept_ = -float(self.coef_ @ (m1 + m0) / 2)
        return self

    def decision_function(self, X):
        return X @ self.coef_ + self.intercept_


class LDAProbe(_Linear):
    """Covariance-adjusted direction: scikit-learn LDA with Ledoit-Wolf shrinkage (solver="lsqr").

    >>> rng = np.random.default_rng(0)
    >>> y = np.tile([0, 1], 30); X = rng.normal(size=(60, 4)); X[:, 1] += 3 * y
    >>> float((LDAProbe().fit(X, y).predict(X) == y).mean()) > 0.9
    True
    """

    def __init__(self, shrinkage="auto"):
        self.shrinkage = shrinkage

    def fit(self, X, y, groups=None) -> LDAProbe:
        self.lda_ = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=self.shrinkage).fit(X, y)
        return self

    def decision_function(self, X):
        return self.lda_.decision_function(X)


class LATProbe(_Linear):
    """LAT / PCA on paired differences (RepE): the top principal direction of x(label 1) - x(label 0) within each
    group that has both labels (random label-0/label-1 pairs when groups hold one label), signed so label 1
    scores higher; threshold at the midpoint of the projected class means.

    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)            # pairs: one difference per group
    >>> X = rng.normal(size=(60, 3)) + 5 * rng.normal(size=(30, 1, 3)).repeat(2, 0).reshape(60, 3)
    >>> X[:, 2] += 2 * y                                                    # the pairs differ along feature 2
    >>> p = LATProbe().fit(X, y, groups=g)
    >>> bool(abs(p.coef_[2]) > 0.9), bool(p.coef_[2] > 0)                  # unit direction, label 1 scores higher
    (True, True)
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, y, groups=None) -> LATProbe:
        y = np.asarray(y)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups).astype(str)
        diffs = []
        for g in np.unique(groups):
            m = groups == g
            if (y[m] == 1).any() and (y[m] == 0).any():
                diffs.append(X[m & (y == 1)].mean(0) - X[m & (y == 0)].mean(0))
        if len(diffs) < 2:
            rng = np.random.default_rng(self.seed)
            i1, i0 = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
            k = min(len(i1), len(i0))
            diffs = list(X[rng.permutation(i1)[:k]] - X[rng.permutation(i0)[:k]])
        D = np.stack(diffs)
        _, _, vt = np.linalg.svd(D, full_matrices=False)   # uncentred: the consistent difference is the signal
        v = vt[0]
        if (X[y == 1] @ v).mean() < (X[y == 0] @ v).mean():
            v = -v
        self.coef_ = v
        self.intercept_ = -float(((X[y == 1] @ v).mean() + (X[y == 0] @ v).mean()) / 2)
        return self

    def decision_function(self, X):
        return X @ self.coef_ + self.intercept_


class RidgeProbe(BaseEstimator, RegressorMixin):
    """StandardScaler + Ridge for continuous targets (e.g. an intermediate value), alpha by group-aware inner CV.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); target = 3 * X[:, 0] + 0.1 * rng.normal(size=60)
    >>> r = RidgeProbe(alphas=(1.0, 1e4)).fit(X, target)
    >>> r.alpha_, round(r.score(X, target), 2)                  # score: R^2 (scikit-learn's RegressorMixin)
    (1.0, 1.0)
    """

    def __init__(self, alphas: tuple[float, ...] = (1e0, 1e1, 1e2, 1e3, 1e4, 1e5), inner_folds: int = 3,
                 seed: int = 0):
        self.alphas, self.inner_folds, self.seed = alphas, inner_folds, seed

    def fit(self, X, y, groups=None) -> RidgeProbe:
        y = np.asarray(y, float)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        alphas = sorted(self.alphas)
        if len(alphas) > 1:
            folds = group_kfold(y, groups, k=self.inner_folds, seed=self.seed + 1, stratified=False)
            val = [np.mean([r2_score(y[te], make_pipeline(StandardScaler(), Ridge(alpha=a)).fit(X[tr], y[tr])
                                     .predict(X[te])) for tr, te in folds]) for a in alphas]
            self.alpha_ = alphas[int(np.argmax(val))]
        else:
            self.alpha_ = alphas[0]
        self.pipeline_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha_)).fit(X, y)
        return self

    def predict(self, X):
        return self.pipeline_.predict(X)


ESTIMATORS = {"diffmean": DiffMeanProbe, "lda": LDAProbe, "lat": LATProbe, "logreg": LogisticProbe}


def fit_chunk_estimator(method: str, X: Float[np.ndarray, "cell n d"], y: np.ndarray, groups: np.ndarray,
                        splits: list, perms: np.ndarray, null_splits: int) -> dict:
    """Cell-by-cell fits with an estimator from ESTIMATORS (same return layout as probes.fitting).

    Permutation refits loop in Python: diffmean is fast, lda/lat with many permutations are slow on large d.

    >>> from probes.splits import group_kfold, permute_labels
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> X = rng.normal(size=(2, 40, 4)); X[0, :, 0] += 3 * y                # [cell, n, d]: cell 0 carries the label
    >>> perms = np.stack([permute_labels(y, g, rng) for _ in range(3)])      # [perm, n]
    >>> out = fit_chunk_estimator("diffmean", X, y, g, group_kfold(y, g, k=4, seed=0), perms, null_splits=4)
    >>> out["scores"].shape, out["null"].shape, out["fold_auroc"].shape     # held-out scores of every sample
    ((2, 40), (2, 3, 40), (2, 4))
    >>> bool(out["fold_auroc"][0].mean() > 0.9), bool(abs(out["fold_auroc"][1].mean() - 0.5) < 0.25)
    (True, True)
    """
    c, n, _ = X.shape
    scores = np.full((c, n), np.nan)
    null = np.full((c, len(perms), n), np.nan)
    train_auc = np.zeros((c, len(splits)))
    fold_auc = np.zeros((c, len(splits)))
    for k in range(c):
        for si, (tr, te) in enumerate(splits):
            est = ESTIMATORS[method]().fit(X[k, tr], y[tr], groups=groups[tr])
            scores[k, te] = est.decision_function(X[k, te])
            fold_auc[k, si] = roc_auc_score(y[te], scores[k, te]) if len(np.unique(y[te])) == 2 else np.nan
            train_auc[k, si] = roc_auc_score(y[tr], est.decision_function(X[k, tr]))
            if si < null_splits:
                for pi, yp in enumerate(perms):
                    e = ESTIMATORS[method]().fit(X[k, tr], yp[tr], groups=groups[tr])
                    null[k, pi, te] = e.decision_function(X[k, te])
    return {"scores": scores, "null": null, "train_auroc": train_auc.mean(1), "log10_C": np.full(c, np.nan),
            "not_converged": np.zeros(c, bool), "fold_auroc": fold_auc}
