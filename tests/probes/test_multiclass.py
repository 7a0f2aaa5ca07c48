"""probes.sweep(method="multiclass"): finds a planted many-valued code, stays at chance on noise with an honest CI
and p-value, and names bad labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import probes


def _data(n=300, k=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 2, 2, 12))
    X[:, 1, 1, :k] += 3.5 * np.eye(k)[y]                     # only layer 1 / position "b" encodes y
    return X, y


def test_planted_code_found_and_noise_at_chance():
    X, y = _data()
    g = probes.sweep(X, labels=y, groups=np.arange(len(y)), method="multiclass", n_permutations=20,
                     positions=["a", "b"], progress=False)
    assert g.best("accuracy") == (1, "b")
    assert g.sel("accuracy", 1, "b") > 0.9 and g.sel("accuracy_lo", 1, "b") > 1 / 6
    assert g.sel("p_value", 1, "b") == pytest.approx(1 / 21)
    for layer, pos in [(0, "a"), (0, "b"), (1, "a")]:
        acc, lo, hi = (g.sel(m, layer, pos) for m in ("accuracy", "accuracy_lo", "accuracy_hi"))
        assert abs(acc - 1 / 6) < 0.08 and lo < 1 / 6 < hi, (layer, pos, acc, lo, hi)
        assert g.sel("p_value", layer, pos) > 0.05
    assert g.sel("chance", 0, "a") == pytest.approx(1 / 6)
    assert abs(g.sel("control_accuracy", 1, "b") - 1 / 6) < 0.1      # the shuffled control task is not decodable
    assert g.config["method"] == "multiclass" and g.config["n_classes"] == 6


def test_groups_keep_repeats_on_one_side():
    """Two copies of each sample in one group: a probe that memorised samples would score 1.0 on noise."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 150)
    X = rng.normal(size=(150, 1, 1, 40))
    X2, y2, g2 = np.concatenate([X, X]), np.concatenate([y, y]), np.concatenate([np.arange(150)] * 2)
    g = probes.sweep(X2, labels=y2, groups=g2, method="multiclass", n_permutations=0, progress=False, Cs=(100.0,))
    assert g.sel("accuracy")[0, 0] < 0.4


def test_bad_labels_name_the_fix():
    X, y = _data(n=60)
    with pytest.raises(ValueError, match="method='multiclass' needs class codes"):
        probes.sweep(X, labels=y - 1, groups=np.arange(60), method="multiclass", progress=False)
    with pytest.raises(ValueError, match="use method='multiclass'"):
        probes.sweep(X, labels=y, groups=np.arange(60), method="logreg", progress=False)


def test_fit_chunk_multiclass_predicts_as_scikit_learns_softmax_regression():
    """One fold: the torch L-BFGS softmax fit (features standardised with the training rows' mean and SD) predicts
    the classes scikit-learn's multinomial LogisticRegression predicts on the same standardised features, with the
    same C; the train accuracy is the fit's accuracy on its training rows."""
    from sklearn.linear_model import LogisticRegression

    from probes.multiclass import fit_chunk_multiclass

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 120)
    X = rng.normal(size=(120, 6))
    X[:, :4] += 1.2 * np.eye(4)[y]
    tr, te = np.arange(80), np.arange(80, 120)
    out = fit_chunk_multiclass(torch.as_tensor(X[None]), y, [(tr, te)], np.zeros((0, 120), np.int64), 4, C=0.5,
                               max_iter=500)
    mu, sd = X[tr].mean(0), X[tr].std(0, ddof=1)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit((X[tr] - mu) / sd, y[tr])
    want = ref.predict((X[te] - mu) / sd)
    assert (out["pred"][0, te] == want).mean() >= 0.95 and np.isnan(out["pred"][0, tr]).all()
    assert out["train_accuracy"][0] == pytest.approx(ref.score((X[tr] - mu) / sd, y[tr]), abs=0.02)


def test_multiclass_metrics_recomputed():
    """Accuracy, chance, majority, control, selectivity and the permutation p-value from their definitions."""
    from probes.multiclass import multiclass_metrics

    y = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    pred = np.array([[0, 1, 2, 0, 1, 0, 0, np.nan]])                       # 6 of 7 scored samples right
    perms = np.array([[1, 0, 2, 0, 2, 1, 0, 0], [0, 2, 1, 0, 1, 2, 0, 0], [2, 1, 0, 0, 1, 2, 0, 0]])
    null = np.array([[[1, 0, 2, 0, 2, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [2, 1, 0, 0, 1, 2, 0, 0]]], float)
    m = multiclass_metrics(pred, null, np.array([0.9]), y, perms, np.arange(8), 3, n_bootstrap=50, seed=0)
    acc = 6 / 7
    null_acc = [(null[0, k] == perms[k]).mean() for k in range(3)]           # the last replicate: the control task
    assert m["accuracy"][0] == pytest.approx(acc) and m["n_test"][0] == 7
    assert m["chance"][0] == pytest.approx(1 / 3) and m["majority"][0] == pytest.approx(4 / 8)
    assert m["control_accuracy"][0] == pytest.approx(null_acc[2])
    assert m["selectivity"][0] == pytest.approx(acc - null_acc[2])
    assert m["p_value"][0] == pytest.approx((1 + sum(a >= acc for a in null_acc[:2])) / 3)
    assert m["gap"][0] == pytest.approx(0.9 - acc)
    assert m["null_accuracy_mean"][0] == pytest.approx(np.mean(null_acc[:2]))
    assert m["accuracy_lo"][0] <= acc <= m["accuracy_hi"][0]


def test_a_skipped_cell_has_no_p_value_and_test_size_is_refused():
    """A position with 6 valid samples cannot be cross-validated: it is skipped, and its p-value is NaN, not the
    floor 1/(1 + n_permutations) a NaN accuracy compared against NaN nulls would give. The multiclass sweep holds
    out no groups, so `test_size` is refused before any fit rather than ignored."""
    X, y = _data(n=90)
    valid = np.ones((90, 2), bool)
    valid[6:, 1] = False
    g = probes.sweep(X, labels=y, groups=np.arange(90), method="multiclass", n_permutations=19, valid=valid,
                     positions=["a", "b"], n_bootstrap=50, progress=False)
    assert np.isnan(g.metrics["accuracy"][:, 1]).all()
    assert np.isnan(g.metrics["p_value"][:, 1]).all() and np.isnan(g.metrics["p_corrected"][:, 1]).all()
    assert np.isfinite(g.metrics["p_value"][:, 0]).all()
    with pytest.raises(ValueError, match="test_size=0.5: is not supported with method='multiclass'"):
        probes.sweep(X, labels=y, groups=np.arange(90), method="multiclass", test_size=0.5, progress=False)
