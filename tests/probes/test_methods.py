"""probes.methods: each probe against its oracle: LogisticProbe and LDAProbe against scikit-learn fitted the same
way, DiffMeanProbe and LATProbe against their definitions recomputed with numpy, RidgeProbe against scikit-learn's
Ridge; `fit_chunk_estimator` gives every sample exactly one held-out score from its fold's fit."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes.methods import DEFAULT_CS, DiffMeanProbe, LATProbe, LDAProbe, LogisticProbe, RidgeProbe, fit_chunk_estimator
from probes.splits import group_kfold, permute_labels


def _pairs(n_groups=40, d=6, seed=0, strength=1.0):
    rng = np.random.default_rng(seed)
    y, g = np.tile([0, 1], n_groups), np.repeat(np.arange(n_groups), 2)
    X = rng.normal(size=(2 * n_groups, d)) + rng.normal(size=(n_groups, d)).repeat(2, 0)   # a per-group offset
    X[:, 0] += strength * (y - 0.5) * 2
    return X, y, g


def test_logistic_probe_is_scikit_learn_with_the_c_its_inner_cv_picks():
    X, y, g = _pairs()
    p = LogisticProbe(Cs=(1e-3, 1e-1, 10.0), seed=0).fit(X, y, groups=g)
    folds = group_kfold(y, g, k=3, seed=1)
    want = [np.mean([roc_auc_score(y[te], make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-8,
                     max_iter=10000)).fit(X[tr], y[tr]).decision_function(X[te])) for tr, te in folds])
            for C in (1e-3, 1e-1, 10.0)]
    np.testing.assert_allclose(p.cv_auroc_, want, atol=1e-12)
    assert p.C_ == (1e-3, 1e-1, 10.0)[int(np.argmax(want))]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=p.C_, tol=1e-8, max_iter=10000)).fit(X, y)
    np.testing.assert_allclose(p.decision_function(X), ref.decision_function(X), atol=1e-9)
    assert p.predict(X).tolist() == (ref.decision_function(X) > 0).astype(int).tolist()
    np.testing.assert_allclose(p.predict_proba(X)[:, 1], ref.predict_proba(X)[:, 1], atol=1e-9)
    assert LogisticProbe(Cs=(0.5,)).fit(X, y).C_ == 0.5 and DEFAULT_CS == LogisticProbe().Cs


def test_diffmean_probe_is_the_difference_of_class_means():
    X, y, _ = _pairs(seed=1)
    p = DiffMeanProbe().fit(X, y)
    m1, m0 = X[y == 1].mean(0), X[y == 0].mean(0)
    np.testing.assert_allclose(p.coef_, m1 - m0)
    np.testing.assert_allclose(p.decision_function((m1 + m0)[None] / 2), [0.0], atol=1e-12)   # threshold at midpoint
    np.testing.assert_allclose(p.decision_function(X), X @ (m1 - m0) - (m1 - m0) @ (m1 + m0) / 2, atol=1e-12)


def test_lda_probe_is_shrinkage_lda():
    X, y, _ = _pairs(seed=2)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(X, y)
    np.testing.assert_allclose(LDAProbe().fit(X, y).decision_function(X), ref.decision_function(X), atol=1e-12)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.3).fit(X, y)
    np.testing.assert_allclose(LDAProbe(0.3).fit(X, y).decision_function(X), ref.decision_function(X), atol=1e-12)


def test_lat_probe_is_the_top_direction_of_paired_differences():
    X, y, g = _pairs(seed=3)
    p = LATProbe().fit(X, y, groups=g)
    D = X[y == 1] - X[y == 0]                               # rows are pairs (0, 1) per group, in group order
    v = np.linalg.svd(D, full_matrices=False)[2][0]
    v = v if (X[y == 1] @ v).mean() > (X[y == 0] @ v).mean() else -v
    np.testing.assert_allclose(p.coef_, v, atol=1e-10)
    np.testing.assert_allclose(p.intercept_, -((X[y == 1] @ v).mean() + (X[y == 0] @ v).mean()) / 2, atol=1e-10)
    single = LATProbe(seed=4).fit(X, y, groups=np.arange(len(y)))         # one label per group: random pairs
    rng = np.random.default_rng(4)
    i1, i0 = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    R = X[rng.permutation(i1)] - X[rng.permutation(i0)]
    w = np.linalg.svd(R, full_matrices=False)[2][0]
    assert abs(abs(single.coef_ @ w) - 1) < 1e-10


def test_ridge_probe_is_scaled_ridge_with_the_alpha_its_inner_cv_picks():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 4))
    t = 2 * X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=90)
    g = np.arange(90) // 3
    p = RidgeProbe(alphas=(0.1, 1e3)).fit(X, t, groups=g)
    assert p.alpha_ == 0.1
    ref = make_pipeline(StandardScaler(), Ridge(alpha=0.1)).fit(X, t)
    np.testing.assert_allclose(p.predict(X), ref.predict(X), atol=1e-10)


@pytest.mark.parametrize("method", ["diffmean", "lda", "lat"])
def test_fit_chunk_estimator_scores_each_sample_once_from_its_folds_fit(method):
    X, y, g = _pairs(n_groups=20, d=4, seed=6, strength=1.5)
    splits = group_kfold(y, g, k=4, seed=0)
    perms = np.stack([permute_labels(y, g, np.random.default_rng(k)) for k in range(2)])
    cls = {"diffmean": DiffMeanProbe, "lda": LDAProbe, "lat": LATProbe}[method]
    out = fit_chunk_estimator(method, np.stack([X, X[:, ::-1]]), y, g, splits, perms, null_splits=1)
    assert out["scores"].shape == (2, 40) and np.isfinite(out["scores"]).all()
    for si, (tr, te) in enumerate(splits):
        est = cls().fit(X[tr], y[tr], groups=g[tr])
        np.testing.assert_allclose(out["scores"][0, te], est.decision_function(X[te]), atol=1e-9)
        assert out["fold_auroc"][0, si] == pytest.approx(roc_auc_score(y[te], est.decision_function(X[te])))
    tr, te = splits[0]                                     # null refits: only the first split (null_splits=1)
    null_est = cls().fit(X[tr], perms[1][tr], groups=g[tr])
    np.testing.assert_allclose(out["null"][0, 1, te], null_est.decision_function(X[te]), atol=1e-9)
    assert np.isnan(out["null"][0, 1, splits[1][1]]).all()
    assert np.isnan(out["log10_C"]).all() and not out["not_converged"].any()
