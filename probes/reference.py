"""The scikit-learn reference of `probes.sweep(method="logreg")`, one cell at a time: the oracle of the parity tests
and the baseline of `benchmarks/bench_probes.py`.

It is the analysis a careful researcher writes with scikit-learn, on the sweep's own folds: per outer group fold a
`Pipeline(StandardScaler, LogisticRegressionCV)` fitted on the outer training part (the scaler is fitted there, so
the inner C search runs on features scaled by the outer training part, as `LogisticRegressionCV` inside a pipeline
does), C chosen among the same Cs by the mean AUROC over the same inner group folds (ties -> the smallest C:
`LogisticRegressionCV` takes the first maximum over the ascending Cs), refitted at that C on the outer training part;
the held-out decision scores of every outer fold; and the permutation null, each relabeling refitted at the C chosen
for that outer fold (the scaler does not depend on labels, so it is fitted once per fold).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    >>> X = rng.normal(size=(60, 8)) + np.outer(y, np.ones(8))
    >>> splits, inner = sweep_folds(y, g, folds=3, inner_folds=3, seed=0)
    >>> ref = nested_logreg(X, y, splits, inner, Cs=(1e-2, 1.0))
    >>> ref["scores"].shape, len(ref["C"])
    ((60,), 3)
    >>> null = permutation_null(X, y[None], splits, ref["C"])        # relabelings [n_perm, n] -> [n_perm, n]
    >>> bool(np.corrcoef(null[0], ref["scores"])[0, 1] > 0.999)       # the true labels at the chosen C: the fit
    True
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes.fitting import inner_masks_for
from probes.splits import group_kfold

Split = tuple[np.ndarray, np.ndarray]


def sweep_folds(y: Int[np.ndarray, " n"], groups: np.ndarray, folds: int = 5, inner_folds: int = 3,
                seed: int = 0) -> tuple[list[Split], list[list[Split]]]:
    """The outer group folds `probes.sweep` uses (every sample valid, no `test_size`) and, per outer fold, its
    inner group folds as (train, validation) indices into that fold's training part.

    >>> splits, inner = sweep_folds(np.tile([0, 1], 20), np.repeat(np.arange(20), 2), folds=5, inner_folds=3)
    >>> len(splits), len(inner[0]), len(splits[0][0]) == sum(map(len, inner[0][0]))
    (5, 3, True)
    """
    splits = group_kfold(y, groups, k=folds, seed=seed)
    inner = [[(np.flatnonzero(m == 1), np.flatnonzero(m == 0)) for m in masks]
             for masks in inner_masks_for(splits, y, groups, inner_folds, seed)]
    return splits, inner


def _pipeline(C: float | None, Cs: tuple[float, ...], inner: list[Split] | None, tol: float, max_iter: int):
    if C is not None:
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=tol, max_iter=max_iter))
    return make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=sorted(Cs), cv=inner, scoring="roc_auc", tol=tol, max_iter=max_iter, l1_ratios=(0.0,),
        use_legacy_attributes=False))


def nested_logreg(X: Float[np.ndarray, "n d"], y: Int[np.ndarray, " n"], splits: list[Split],
                  inner: list[list[Split]] | None, Cs: tuple[float, ...], tol: float = 1e-4,
                  max_iter: int = 1000) -> dict:
    """Held-out decision scores of the nested analysis (module docstring) for one cell.

    With one value in `Cs` (or `inner=None`) there is no C search: a plain `LogisticRegression(C=Cs[0])` per fold.
    `tol` and `max_iter` are scikit-learn's (lbfgs, float64). Returns {"scores": [n] (NaN for samples in no test
    part), "C": [n_splits] the C of each outer fold}.

    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> X = np.random.default_rng(0).normal(size=(40, 3)) + y[:, None]
    >>> nested_logreg(X, y, *sweep_folds(y, g, folds=2), Cs=(1e-2, 1.0))["C"].tolist()
    [0.01, 1.0]
    """
    scores = np.full(len(y), np.nan)
    chosen = []
    for si, (tr, te) in enumerate(splits):
        fixed = sorted(Cs)[0] if len(Cs) == 1 or inner is None else None
        pipe = _pipeline(fixed, Cs, None if inner is None else inner[si], tol, max_iter).fit(X[tr], y[tr])
        scores[te] = pipe.decision_function(X[te])
        chosen.append(float(fixed if fixed is not None else pipe[-1].C_))
    return {"scores": scores, "C": np.array(chosen)}


def permutation_null(X: Float[np.ndarray, "n d"], perms: Int[np.ndarray, "perm n"], splits: list[Split],
                     C: Float[np.ndarray, " split"], tol: float = 1e-4, max_iter: int = 1000) -> np.ndarray:
    """Held-out scores [n_perm, n] of every relabeling in `perms`, refitted in every outer fold at that fold's C
    (`nested_logreg(...)["C"]`), the scaler fitted once per fold on its training part.

    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> permutation_null(X, np.stack([y, y[::-1]]), group_kfold(y, g, k=2), np.array([1.0, 1.0])).shape
    (2, 40)
    """
    out = np.full(perms.shape, np.nan)
    for si, (tr, te) in enumerate(splits):
        scaler = StandardScaler().fit(X[tr])
        Xtr, Xte = scaler.transform(X[tr]), scaler.transform(X[te])
        for k, yp in enumerate(perms):
            out[k, te] = LogisticRegression(C=float(C[si]), tol=tol, max_iter=max_iter).fit(
                Xtr, yp[tr]).decision_function(Xte)
    return out
