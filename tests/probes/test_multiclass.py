"""probes.sweep(method="multiclass"): finds a planted many-valued code, stays at chance on noise with an honest CI
and p-value, and names bad labels."""

from __future__ import annotations

import numpy as np
import pytest

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
