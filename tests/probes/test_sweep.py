"""probes.sweep: parity with scikit-learn on real activations, planted signal, noise calibration, checks, errors."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import probes
from probes.splits import group_kfold


def _sklearn_cv_auroc(X, y, g, C, folds=5, seed=0):
    s = np.zeros(len(y))
    for tr, te in group_kfold(y, g, k=folds, seed=seed):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-8, max_iter=20000))
        s[te] = pipe.fit(X[tr], y[tr]).decision_function(X[te])
    return roc_auc_score(y, s), s


@pytest.mark.slow
def test_parity_with_sklearn_on_real_activations(smol_facts):
    """Same folds, same C: batched AUROC == scikit-learn AUROC within 0.005 in every cell (smollm2-135m, layers
    0..29 from HF hidden_states, last token and token 5; persona label and a random group-level label)."""
    X, y, g = smol_facts
    layers = list(range(0, 30, 6))
    Xs = X[:, layers]
    rng = np.random.default_rng(1)
    y_rand = np.repeat(rng.integers(0, 2, len(y) // 2), 2)           # noise target: one label per fact
    for target, C in ((y, 1e-2), (y_rand, 1.0)):
        grid = probes.sweep(Xs, labels=target, groups=g, layers=layers, positions=["last", "tok_5"], Cs=(C,),
                            n_permutations=0, n_bootstrap=20, progress=False)
        for li, l_ in enumerate(layers):
            for pi, p in enumerate(["last", "tok_5"]):
                ref, s_ref = _sklearn_cv_auroc(Xs[:, li, pi], target, g, C)
                ours = grid.sel("auroc", l_, p)
                assert abs(ours - ref) < 0.005, (target is y, l_, p, ours, ref)
                if np.std(s_ref) > 1e-6:
                    assert np.corrcoef(grid.scores[li, pi], s_ref)[0, 1] > 0.999


def _pairs(n_groups, L, P, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n_groups, L, P, d)).astype(np.float32)
    y = np.tile([0, 1], n_groups)
    g = np.repeat(np.arange(n_groups), 2)
    return X, y, g, rng


def test_planted_signal_wins_and_noise_is_calibrated():
    X, y, g, rng = _pairs(100, 4, 3, 48, 0)
    u = rng.normal(size=48)
    u /= np.linalg.norm(u)
    X[:, 2, 1] += np.outer(y - 0.5, u) * 1.5
    grid = probes.sweep(X, labels=y, groups=g, Cs=(1e-3, 1e-2, 1e-1), n_permutations=50, progress=False)
    assert grid.best() == (2, "1")
    assert grid.sel("auroc_lo", 2, "1") > 0.5
    assert grid.sel("p_value", 2, "1") == pytest.approx(1 / 51)
    others = np.delete(grid.metrics["auroc"].ravel(), 2 * 3 + 1)
    assert others.max() < grid.sel("auroc", 2, "1") - 0.1

    # 40 cells of pure noise, with the nested C search on: the permutation refits reuse the C each outer fold chose on
    # the real labels, and the p-values must stay uniform all the same (measured over 800 such cells, 20 seeds at
    # 60 pairs and 5 Cs: 4.75% at p <= 0.05, 9.0% at p <= 0.1)
    Xn, yn, gn, _ = _pairs(100, 5, 8, 24, 1)
    noise = probes.sweep(Xn, labels=yn, groups=gn, Cs=(1e-3, 1e-2, 1e-1, 1.0), n_permutations=40, n_bootstrap=200,
                         progress=False)
    assert len(set(np.round(noise.metrics["log10_C"].ravel(), 3))) > 3     # the search did pick differing Cs
    lo, hi = noise.metrics["auroc_lo"].ravel(), noise.metrics["auroc_hi"].ravel()
    covered = (lo <= 0.5) & (hi >= 0.5)
    assert covered.mean() >= 0.85, list(zip(lo, hi))              # nominal 95%: measured 0.85-0.95
    assert abs(noise.metrics["auroc"].mean() - 0.5) < 0.03            # CV under the null is slightly pessimistic
    pv = noise.metrics["p_value"].ravel()
    assert stats.kstest(pv, "uniform").pvalue > 0.01, sorted(pv)
    assert not [w for w in noise.warnings if w.severity == "error"]


def test_identical_features_reported_not_silent():
    """The seed-style failure: paired samples with identical features at every layer -> an 'identical_features'
    error finding; identical only at layer 0 (the token embedding) -> an info finding, not an error."""
    X, y, g, rng = _pairs(40, 2, 3, 16, 2)
    X[1::2, :, 0] = X[0::2, :, 0]                # position 0: both variants of every pair identical at every layer
    X[:, 1, 2] += np.outer(y - 0.5, np.ones(16)) * 0.8
    grid = probes.sweep(X, labels=y, groups=g, Cs=(1e-2,), n_permutations=10, progress=False)
    found = [w for w in grid.warnings if w.kind == "identical_features"]
    assert len(found) == 1 and found[0].severity == "error"
    assert found[0].cells == [(0, "0"), (1, "0")]
    assert "identical_features" in grid.summary()
    assert grid.sel("auroc", 1, "2") > 0.9

    X, y, g, rng = _pairs(40, 2, 3, 16, 2)
    X[1::2, 0, 1] = X[0::2, 0, 1]                # position 1 identical at layer 0 only
    grid = probes.sweep(X, labels=y, groups=g, Cs=(1e-2,), n_permutations=0, progress=False)
    found = [w for w in grid.warnings if w.kind == "identical_features"]
    assert [(w.severity, w.cells) for w in found] == [("info", [(0, "1")])]


def test_heldout_pick_best_and_delong():
    X, y, g, rng = _pairs(60, 2, 2, 24, 3)
    X[:, 1, 0] += np.outer(y - 0.5, np.ones(24)) * 0.6
    grid = probes.sweep(X, labels=y, groups=g, Cs=(1e-2,), n_permutations=0, test_size=0.25, progress=False)
    assert len(grid.config["test_idx"]) == 30
    best = probes.pick_best(grid)
    assert (best["layer"], best["position"]) == (1, "0") and best["test_auroc"] > 0.8
    d = probes.delong(grid, (1, "0"), (0, "1"))
    assert d["diff"] > 0.3 and d["p_value"] < 1e-3 and d["n"] == 90
    same = probes.delong(grid, (1, "0"), (1, "0"))
    assert same["p_value"] == 1.0


def test_sweep_on_activation_cache(tmp_path):
    """An ActivationCache from interp (tiny-llama) with the target taken from its sample table."""
    import interp

    task = probes.tasks.load("instructed-facts", n=40, seed=0)
    c = interp.cache(interp.load_model("tiny-llama"), task, positions=["tok_0", "last"], out=tmp_path / "c")
    c = interp.load_cache(tmp_path / "c")
    grid = probes.sweep(c, target="label", Cs=(1e-2,), folds=4, n_permutations=5, progress=False)
    assert grid.layers == c.layers and grid.positions == ["tok_0", "last"]
    assert grid.config["model"] == "tiny-llama"
    assert any(w.kind == "zero_variance" and (0, "tok_0") in w.cells for w in grid.warnings)
    with pytest.raises(KeyError, match="target column 'honesty' is not in the cache"):
        probes.sweep(c, target="honesty", progress=False)


def test_bad_inputs_have_clear_errors():
    X, y, g, _ = _pairs(20, 1, 1, 8, 4)
    with pytest.raises(ValueError, match="one class only"):
        probes.sweep(X, labels=np.zeros_like(y), groups=g, progress=False)
    Xbad = X.copy()
    Xbad[3, 0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf activations at layer 0"):
        probes.sweep(Xbad, labels=y, groups=g, progress=False)
    Xbad[3, 0, 0, 1] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        probes.sweep(Xbad, labels=y, groups=g, progress=False)
    with pytest.raises(ValueError, match="groups= is required"):
        probes.sweep(X, labels=y, progress=False)
    with pytest.raises(ValueError, match="mismatched sample counts"):
        probes.sweep(X, labels=y[:-2], groups=g[:-2], progress=False)
    with pytest.raises(ValueError, match="method=.svm.: must be one of"):
        probes.sweep(X, labels=y, groups=g, method="svm", progress=False)
    with pytest.raises(ValueError, match="binary 0/1"):
        probes.sweep(X, labels=y * 2 + g % 2, groups=g, progress=False)
    Xd = X.copy()
    Xd[2] = Xd[7]                                                  # the same sample under two groups
    with pytest.raises(ValueError, match="identical activations at every cell"):
        probes.sweep(Xd, labels=y, groups=g, progress=False)


def test_sparse_position_is_skipped_and_reported_not_raised():
    """A position valid for only 4 groups (like a late resp_* token) fills 2 outer folds but leaves 2 groups per
    training part, too few for the 3-fold nested C search over two Cs: its cells are skipped and reported (this used
    to stop the whole sweep), the rest fitted."""
    X, y, g, rng = _pairs(40, 2, 2, 16, 3)
    X[:, :, 1] += (y - 0.5)[:, None, None] * 2.0
    valid = np.ones((len(y), 2), bool)
    valid[:, 0] = np.isin(g, np.unique(g)[:4])
    grid = probes.sweep(X, labels=y, groups=g, valid=valid, folds=2, Cs=(1e-2, 1.0), n_permutations=0, progress=False)
    skipped = [w for w in grid.warnings if w.kind == "skipped_cells"]
    assert len(skipped) == 1 and skipped[0].cells == [(0, "0"), (1, "0")]
    assert np.isnan(grid.sel("auroc", 0, "0")) and grid.sel("auroc", 1, "1") > 0.9


def test_n_jobs_changes_the_time_not_the_numbers():
    """Chunks fitted in 2 threads (each single-threaded) give the grid of 1 chunk at a time at one torch thread,
    bit for bit; n_jobs is checked before any work."""
    X, y, g, rng = _pairs(40, 3, 5, 32, 4)
    X[:, 1, 2, 0] += 2.0 * y
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = probes.sweep(X, labels=y, groups=g, n_permutations=20, n_bootstrap=100, chunk=2, n_jobs=1,
                           progress=False)
    finally:
        torch.set_num_threads(before)
    two = probes.sweep(X, labels=y, groups=g, n_permutations=20, n_bootstrap=100, chunk=2, n_jobs=2, progress=False)
    assert torch.get_num_threads() == before
    assert one.best() == two.best() == (1, "2")
    np.testing.assert_array_equal(one.scores, two.scores)
    for k in ("auroc", "p_value", "p_corrected", "log10_C", "auroc_lo"):
        np.testing.assert_array_equal(one.metrics[k], two.metrics[k], err_msg=k)
    with pytest.raises(ValueError, match="n_jobs=0"):
        probes.sweep(X, labels=y, groups=g, n_jobs=0, progress=False)


def test_ridge_null_is_scored_on_the_same_samples_as_the_real_fit():
    """The permutation null's R^2 is taken over the samples the cell scores (a held-out part and invalid positions
    are NaN there), like the observed R^2. Taken over all samples, a planted signal with test_size=0.5 got p-values
    of 0.32-0.94 over these seeds; now it sits at the floor 1/31, while pure noise stays spread out."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        y = rng.normal(size=80)
        X = rng.normal(size=(80, 2, 2, 6))
        X[:, 1, 0, 0] += y                                   # layer 1 at position 0 encodes y; the rest is noise
        valid = np.ones((80, 2), bool)
        valid[:10, 0] = False                                # and 10 samples are missing at position 0
        g = probes.sweep(X, labels=y, groups=np.arange(80), method="ridge", n_permutations=30, test_size=0.5,
                         valid=valid, n_bootstrap=20, seed=seed, progress=False)
        assert g.sel("r2", 1, "0") > 0.1 and g.sel("p_value", 1, "0") == pytest.approx(1 / 31), seed
        assert g.sel("p_value", 0, "0") > 0.05, (seed, g.sel("p_value", 0, "0"))


def test_a_shuffle_that_cannot_move_labels_is_an_error_not_p_equal_1():
    """Every honest group has 2 samples and every deceptive one 3: the group-level shuffle swaps one-label groups only
    with groups of their size, so it returns the real labels every time. A planted signal (AUROC ~0.7) used to get
    p = 1.0 and selectivity 0 silently; now p-values and the control task are NaN and an error says why. With a few
    mixed groups added, the shuffle moves 22 of 122 labels: valid p-values, and a warning that they have little
    power."""
    rng = np.random.default_rng(0)
    g = np.concatenate([np.repeat(np.arange(20), 2), np.repeat(np.arange(20, 40), 3)])
    y = np.concatenate([np.zeros(40, int), np.ones(60, int)])
    X = rng.normal(size=(100, 1, 1, 16)).astype(np.float32)
    X[:, 0, 0, 0] += y * 1.0
    kw = dict(Cs=(1e-1,), n_permutations=20, n_bootstrap=100, progress=False)
    grid = probes.sweep(X, labels=y, groups=g, **kw)
    assert grid.sel("auroc", 0, "0") > 0.65
    for k in ("p_value", "p_corrected", "null_auroc_mean", "control_auroc", "selectivity"):
        assert np.isnan(grid.metrics[k]).all(), k
    found = [w for w in grid.warnings if w.kind.startswith("shuffle_")]
    assert [(w.kind, w.severity) for w in found] == [("shuffle_blind", "error")]
    assert "cannot move any of the 100 labels" in found[0].message
    given = probes.sweep(X, labels=y, groups=g, control=rng.integers(0, 2, 100), **kw)   # a control task given: kept
    assert np.isfinite(given.metrics["control_auroc"]).all() and np.isnan(given.metrics["p_value"]).all()

    g2 = np.concatenate([g, np.repeat(np.arange(40, 51), 2)])                  # 11 pairs that mix labels
    y2 = np.concatenate([y, np.tile([0, 1], 11)])
    X2 = rng.normal(size=(122, 1, 1, 16)).astype(np.float32)
    X2[:, 0, 0, 0] += y2 * 1.0
    grid = probes.sweep(X2, labels=y2, groups=g2, **kw)
    found = [w for w in grid.warnings if w.kind.startswith("shuffle_")]
    assert [(w.kind, w.severity) for w in found] == [("shuffle_weak", "warning")]
    assert "only 22 of the 122" in found[0].message
    assert np.isfinite(grid.metrics["p_value"]).all()
