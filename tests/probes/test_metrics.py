"""probes.metrics: AUROC (ties, weights), group-bootstrap CIs (both code paths against direct resampling), DeLong,
recall at a fixed FPR, confusion counts, and the selection-aware p-values of max-T.

Max-T (issue 15, Build 4): Westfall-Young max-T over the cells of a probe sweep. On pure noise over 100 cells the
best cell's per-cell p-value is almost always below 0.05, while its max-T corrected p-value `p_corrected` is below
0.05 about as often as a 5% test allows; a planted cell keeps the smallest corrected p-value the permutations can
give. Measured on one thread (OMP_NUM_THREADS=1), shared 2-core machine: the max-T tests 36 s, the 40-seed noise
test 25 s of it.
"""

import doctest

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

import probes
from probes import metrics
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


# ---- max-T: selection-aware p-values
N, L, P, D = 40, 10, 10, 3          # 40 samples (own groups), 10 layers x 10 positions = 100 cells, d = 3
N_PERM = 99                         # smallest possible p = 1 / (1 + 99) = 0.01
SEEDS = 40
# Under H0 the corrected p of the best cell is <= 0.05 with probability <= 0.05, so the count over 40 seeds is at
# most Binomial(40, 0.05) (mean 2); P(count >= 7) = binom.sf(6, 40, 0.05) = 0.0034. We allow at most 6 of 40.
MAX_FALSE = 6
PLANTED = (3, 7)                    # layer index, position index of the planted cell


def _sweep(X: np.ndarray, y: np.ndarray, seed: int) -> probes.ProbeGrid:
    """Cheap logistic sweep: one C (no nested search), 4 folds, 99 group-level permutations refitted per cell."""
    return probes.sweep(X, labels=y, groups=np.arange(len(y)), method="logreg", Cs=(1.0,), folds=4,
                        n_permutations=N_PERM, n_bootstrap=20, seed=seed, device="cpu", chunk=100, progress=False)


def _noise(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    return rng.normal(size=(N, L, P, D)).astype(np.float32), np.tile([0, 1], N // 2)


def test_max_t_doctest_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for t in finder.find(metrics.max_t_p, "max_t_p", globs={"np": np, "max_t_p": metrics.max_t_p}):
        runner.run(t)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=3)


def test_max_t_matches_its_definition():
    rng = np.random.default_rng(0)
    obs, null = rng.uniform(size=7), rng.uniform(size=(7, 30))
    null[2, 5] = np.nan
    col_max = np.nanmax(null, 0)
    want = [(1 + np.sum(col_max >= o)) / 31 for o in obs]
    np.testing.assert_allclose(metrics.max_t_p(obs, null), want)
    assert np.all(metrics.max_t_p(obs, null) >= metrics.permutation_p(obs, null))   # corrected >= per cell


def test_best_cell_on_noise_uncorrected_often_significant_corrected_about_five_percent():
    raw, corrected = [], []
    for seed in range(SEEDS):
        grid = _sweep(*_noise(seed), seed)
        layer, pos = grid.best("auroc")
        raw.append(grid.sel("p_value", layer, pos))
        corrected.append(grid.sel("p_corrected", layer, pos))
        assert grid.metrics["p_corrected"].shape == (L, P) and np.isfinite(grid.metrics["p_corrected"]).all()
        assert np.all(grid.metrics["p_corrected"] >= grid.metrics["p_value"])
    raw, corrected = np.array(raw), np.array(corrected)
    n_raw, n_corr = int((raw < 0.05).sum()), int((corrected < 0.05).sum())
    print(f"best cell of {L * P} noise cells, {SEEDS} seeds: p < 0.05 in {n_raw}, p_corrected < 0.05 in {n_corr}")
    assert n_raw >= 0.75 * SEEDS                     # 1 - 0.95**100 = 0.994 if cells were independent
    assert n_corr <= MAX_FALSE, stats.binom.sf(n_corr - 1, SEEDS, 0.05)


def test_planted_cell_keeps_smallest_corrected_p():
    for seed in range(5):
        X, y = _noise(seed)
        X[:, PLANTED[0], PLANTED[1], 0] += 2.5 * y                # one informative cell among 100
        grid = _sweep(X, y, seed)
        pc = grid.metrics["p_corrected"]
        assert grid.best("auroc") == (PLANTED[0], str(PLANTED[1]))      # array axes are named "0", "1", ...
        assert pc[PLANTED] == 1 / (1 + N_PERM)
        others = np.delete(pc.reshape(-1), PLANTED[0] * P + PLANTED[1])
        assert np.mean(others < 0.05) <= 0.05                     # the 99 noise cells are rarely "significant"
        assert f"p_FWER = 0.01 (max-T over 100 cells; the floor for {N_PERM} permutations)" in grid.summary()


def test_ridge_and_multiclass_grids_carry_p_corrected():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2, 3, 4)).astype(np.float32)
    X[:, 1, 2, 0] += 3 * (np.arange(60) % 3)                    # layer 1, position "2" encodes the target
    for method, y in [("ridge", (np.arange(60) % 3).astype(float)), ("multiclass", np.arange(60) % 3)]:
        grid = probes.sweep(X, labels=y, groups=np.arange(60), method=method, n_permutations=19, n_bootstrap=20,
                            progress=False)
        pc, p = grid.metrics["p_corrected"], grid.metrics["p_value"]
        assert np.isfinite(pc).all() and np.all(pc >= p) and pc[1, 2] == 1 / 20, method


# ---- the other helpers, against their definitions
def test_doctests_of_fpr_threshold_and_group_bootstrap_replicates_run():
    """(moved here from test_transfer / test_textbase: the doctests of this module's functions)"""
    runner = doctest.DocTestRunner()
    for t in doctest.DocTestFinder().find(metrics.fpr_threshold, "fpr_threshold", globs={"np": np, **vars(metrics)}):
        runner.run(t)
    assert runner.failures == 0 and runner.tries == 1
    runner = doctest.DocTestRunner()
    f = metrics.group_bootstrap_replicates
    for t in doctest.DocTestFinder().find(f, f.__name__, globs={"np": np, f.__name__: f}):
        runner.run(t)
    assert runner.failures == 0 and runner.tries >= 2


def test_permutation_p_fpr_threshold_and_nan_quantile_match_their_definitions():
    rng = np.random.default_rng(5)
    obs, null = rng.uniform(size=6), rng.uniform(size=(6, 25))
    null[1, :3] = np.nan
    want = [(1 + np.sum(null[i][np.isfinite(null[i])] >= obs[i])) / (1 + np.isfinite(null[i]).sum()) for i in range(6)]
    np.testing.assert_allclose(metrics.permutation_p(obs, null), want)
    scores, y = rng.normal(size=(3, 50)), np.tile([0, 1], 25)
    calib = np.arange(50) < 30
    scores[2, :] = np.nan
    thr = metrics.fpr_threshold(scores, y, calib, 0.1)
    for i in range(2):
        assert thr[i] == np.quantile(scores[i, calib & (y == 0)], 0.9)
    assert np.isnan(thr[2])
    q = metrics.nan_quantile(np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]]), 0.5)
    assert q[0] == 2.0 and np.isnan(q[1])


def test_auroc_tensor_is_auroc_in_torch():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.normal(size=(3, 40)), 1)
    w = rng.integers(0, 3, 40).astype(float)
    got = metrics.auroc_tensor(torch.as_tensor(s), torch.as_tensor(y, dtype=torch.float64).expand(3, -1),
                               torch.as_tensor(w).expand(3, -1))
    np.testing.assert_allclose(got.numpy(), [roc_auc_score(y, r, sample_weight=w) for r in s], atol=1e-12)
