"""probes.select: `pick_best` (pick a cell on the cross-validated part, confirm it on held-out groups) and `delong`
(two cells of one grid, on the CV or the held-out samples), against the grid's own scores."""

import numpy as np
import pytest

import probes
from probes import metrics

# The noise of the max-T tests (tests/probes/test_metrics.py): 40 samples in their own groups, 10 x 10 cells, d = 3.
N, L, P, D = 40, 10, 10, 3
N_PERM = 99
PLANTED = (3, 7)                    # layer index, position index of the planted cell


def _noise(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    return rng.normal(size=(N, L, P, D)).astype(np.float32), np.tile([0, 1], N // 2)


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


def test_delong_compares_two_cells_on_the_chosen_part():
    """The grid's delong is metrics.delong on the two cells' scores restricted to the CV (or held-out) samples."""
    rng = np.random.default_rng(2)
    y, g = np.tile([0, 1], 40), np.repeat(np.arange(40), 2)
    X = rng.normal(size=(80, 2, 2, 4)).astype(np.float32)
    X[:, 1, 0, 0] += 1.5 * y
    grid = probes.sweep(X, labels=y, groups=g, positions=["a", "b"], Cs=(1.0,), n_permutations=0, n_bootstrap=20,
                        test_size=0.25, progress=False)
    test = np.isin(np.arange(80), grid.config["test_idx"])
    for on, keep in (("cv", ~test), ("test", test)):
        d = probes.delong(grid, (1, "a"), (0, "b"), on=on)
        want = metrics.delong(np.where(keep, grid.scores[1, 0], np.nan), np.where(keep, grid.scores[0, 1], np.nan), y)
        assert {k: d[k] for k in want} == want and d["n"] == keep.sum()
        assert d["cell_a"] == (1, "a") and d["cell_b"] == (0, "b")
    assert probes.delong(grid, (1, "a"), (0, "b"))["auroc_a"] == pytest.approx(grid.sel("auroc", 1, "a"))
    with pytest.raises(ValueError, match="on='all'"):
        probes.delong(grid, (1, "a"), (0, "b"), on="all")
    with pytest.raises(KeyError):
        probes.delong(grid, (5, "a"), (0, "b"))


def test_pick_best_needs_a_held_out_part_and_respects_restrictions():
    rng = np.random.default_rng(3)
    y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    X = rng.normal(size=(60, 3, 2, 4)).astype(np.float32)
    X[:, 2, 1, 0] += 2.0 * y
    plain = probes.sweep(X, labels=y, groups=g, Cs=(1.0,), n_permutations=0, n_bootstrap=20, progress=False)
    with pytest.raises(ValueError, match="run probes.sweep\\(..., test_size=0.25\\)"):
        probes.pick_best(plain)
    grid = probes.sweep(X, labels=y, groups=g, Cs=(1.0,), n_permutations=0, n_bootstrap=20, test_size=0.5,
                        progress=False)
    best = probes.pick_best(grid)
    assert (best["layer"], best["position"]) == (2, "1") and best["test_auroc"] == grid.sel("test_auroc", 2, "1")
    only = probes.pick_best(grid, positions=["0"], layers=[0, 1])
    assert only["layer"] in (0, 1) and only["position"] == "0"
    assert best["n_cells_compared"] == 6 and only["n_cells_compared"] == 2
    assert (only["layer"], only["position"]) == grid.best("auroc", positions=["0"], layers=[0, 1])
    with pytest.raises(ValueError, match="select='f2'"):
        probes.pick_best(grid, select="f2")
