"""Selection-aware p-values (issue 15, Build 4): Westfall-Young max-T over the cells of a probe sweep.

On pure noise over 100 cells the best cell's per-cell p-value is almost always below 0.05, while its max-T
corrected p-value `p_corrected` is below 0.05 about as often as a 5% test allows; a planted cell keeps the
smallest corrected p-value the permutations can give. Measured on one thread (OMP_NUM_THREADS=1), shared
2-core machine: the whole file 36 s, the 40-seed noise test 25 s of it.
"""

import doctest

import numpy as np
from scipy import stats

import probes
from probes import metrics

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


def test_heldout_confirmation_of_the_picked_cell():
    """probes.sweep(test_size=0.5) + probes.pick_best: pick on half the groups, confirm on the other half."""
    sel, conf = [], []
    for seed in range(10):                                    # pure noise: picking inflates, confirming does not
        X, y = _noise(seed)
        grid = probes.sweep(X, labels=y, groups=np.arange(N), method="logreg", Cs=(1.0,), folds=4,
                            n_permutations=0, n_bootstrap=200, test_size=0.5, seed=seed, progress=False)
        best = probes.pick_best(grid)
        assert best["n_select"] == N // 2 and best["n_report"] == N // 2 and best["n_cells_compared"] == L * P
        assert best["test_auroc_lo"] <= best["test_auroc"] <= best["test_auroc_hi"]
        sel.append(best["auroc"])
        conf.append(best["test_auroc"])
    print(f"noise, best of {L * P} cells: selection AUROC {np.mean(sel):.3f}, confirmation {np.mean(conf):.3f}")
    assert np.mean(sel) > 0.75 and abs(np.mean(conf) - 0.5) < 0.1

    X, y = _noise(0)
    X[:, PLANTED[0], PLANTED[1], 0] += 2.5 * y
    grid = probes.sweep(X, labels=y, groups=np.arange(N), method="logreg", Cs=(1.0,), folds=4,
                        n_permutations=N_PERM, n_bootstrap=200, test_size=0.5, seed=0, progress=False)
    best = probes.pick_best(grid)
    assert (best["layer"], best["position"]) == (PLANTED[0], str(PLANTED[1]))
    assert best["test_auroc"] > 0.85 and best["test_auroc_lo"] > 0.5          # confirmed on unseen groups
    assert best["p_corrected"] == grid.sel("p_corrected", PLANTED[0], str(PLANTED[1]))   # on the 20 picking samples


def test_ridge_and_multiclass_grids_carry_p_corrected():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2, 3, 4)).astype(np.float32)
    X[:, 1, 2, 0] += 3 * (np.arange(60) % 3)                    # layer 1, position "2" encodes the target
    for method, y in [("ridge", (np.arange(60) % 3).astype(float)), ("multiclass", np.arange(60) % 3)]:
        grid = probes.sweep(X, labels=y, groups=np.arange(60), method=method, n_permutations=19, n_bootstrap=20,
                            progress=False)
        pc, p = grid.metrics["p_corrected"], grid.metrics["p_value"]
        assert np.isfinite(pc).all() and np.all(pc >= p) and pc[1, 2] == 1 / 20, method
