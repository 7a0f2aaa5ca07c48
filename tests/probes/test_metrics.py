import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from probes.metrics import auroc, delong, f1_accuracy_confusion, group_bootstrap_auroc, recall_at_fpr


def test_auroc_matches_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=(4, 300)) + y, 1)                 # many ties
    np.testing.assert_allclose(auroc(s, y), [roc_auc_score(y, r) for r in s], atol=1e-12)
    w = rng.integers(0, 3, 300).astype(float)
    ref = roc_auc_score(y, s[0], sample_weight=w)
    np.testing.assert_allclose(auroc(s[0], y, w), ref, atol=1e-12)


def test_bootstrap_delong_recall_confusion():
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 100)
    g = np.repeat(np.arange(100), 2)
    good, bad = y + rng.normal(size=200), rng.normal(size=200)
    lo, hi = group_bootstrap_auroc(np.stack([good, bad]), y, g, n_boot=400)
    assert lo[0] > 0.7 and lo[1] < 0.5 < hi[1]
    d = delong(good, bad, y)
    assert d["p_value"] < 1e-3 and d["auroc_a"] == roc_auc_score(y, good)
    idx = [rng.integers(0, 200, 200) for _ in range(500)]             # DeLong SE ~ bootstrap SE of the difference
    boot = [roc_auc_score(y[i], good[i]) - roc_auc_score(y[i], bad[i]) for i in idx]
    assert abs(d["diff"] / d["z"] / np.std(boot) - 1) < 0.2
    assert delong(good, good, y)["p_value"] == 1.0
    calib = g < 50
    r = recall_at_fpr(good[None], y, calib, 0.01)[0]
    thr = np.quantile(good[calib & (y == 0)], 0.99)
    assert r == np.mean(good[~calib & (y == 1)] > thr)
    m = f1_accuracy_confusion(np.array([[-1.0, 2.0, 3.0, -4.0]]), np.array([0, 1, 0, 1]))
    assert (m["tn"][0], m["fp"][0], m["fn"][0], m["tp"][0]) == (1, 1, 1, 1) and m["accuracy"][0] == 0.5


def test_bootstrap_paths_agree_with_direct_resampling():
    """Both bootstrap paths (pairwise matmul, shared sort + cumsums) equal resampling groups and calling
    roc_auc_score on each replicate, with ties and NaN scores."""
    rng = np.random.default_rng(3)
    y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    s = np.stack([y + rng.normal(size=60), np.round(rng.normal(size=60), 1)])
    s[1, :4] = np.nan
    lo_a, hi_a = group_bootstrap_auroc(s, y, g, n_boot=200, seed=4, pairwise=True)
    lo_b, hi_b = group_bootstrap_auroc(s, y, g, n_boot=200, seed=4, pairwise=False)
    np.testing.assert_allclose([lo_a, hi_a], [lo_b, hi_b], atol=1e-12)
    counts = np.random.default_rng(4).multinomial(30, np.full(30, 1 / 30), size=200)
    codes = np.unique(g.astype(str), return_inverse=True)[1]                  # groups are drawn in string order
    for c, row in enumerate(s):
        ok = np.isfinite(row)
        boots = []
        for k in counts:
            idx = np.repeat(np.arange(60), k[codes])
            idx = idx[ok[idx]]
            boots.append(roc_auc_score(y[idx], row[idx]))
        assert lo_a[c] == pytest.approx(np.quantile(boots, 0.025))
        assert hi_a[c] == pytest.approx(np.quantile(boots, 0.975))
