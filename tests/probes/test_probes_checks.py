"""probes.checks (named test_probes_checks.py: tests/argcheck/test_checks.py has the basename test_checks.py): each
check on small arrays whose answer is known by construction, and the severities that decide what a report marks."""

import doctest

import numpy as np

import probes.checks
from probes.checks import (
    cell_findings,
    data_findings,
    duplicate_samples,
    fingerprint,
    grid_findings,
    identical_fraction,
    label_in_text,
)


def test_ci_below_chance_warns_only_beyond_chance():
    """A few below-chance CIs in a big grid are what noise gives (info); many are a leakage signature (warning)."""
    from probes.checks import grid_findings

    hi = np.full((29, 8), 0.6)
    hi.flat[:5] = 0.45                                   # 5 of 232: chance expects ~5.8
    f = grid_findings({"auroc_hi": hi}, list(range(29)), [str(i) for i in range(8)], None, None)
    assert [(x.kind, x.severity) for x in f] == [("ci_below_chance", "info")]
    hi.flat[:30] = 0.45
    f = grid_findings({"auroc_hi": hi}, list(range(29)), [str(i) for i in range(8)], None, None)
    assert [(x.kind, x.severity) for x in f] == [("ci_below_chance", "warning")] and len(f[0].cells) == 30


def test_label_in_text_doctest_runs():
    """(moved here from test_textbase: the doctest of this module's label_in_text)"""
    runner = doctest.DocTestRunner()
    f = probes.checks.label_in_text
    for t in doctest.DocTestFinder().find(f, f.__name__, globs={"np": np, f.__name__: f}):
        runner.run(t)
    assert runner.failures == 0 and runner.tries >= 1


def test_fingerprint_is_a_fixed_random_projection():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3, 7)).astype(np.float32)
    X[4] = X[1]
    fp = fingerprint(X, seed=2)
    r = np.random.default_rng(2).standard_normal(7)
    np.testing.assert_array_equal(fp, X.astype(np.float64) @ r)
    assert fp.shape == (5, 3) and (fp[4] == fp[1]).all() and len(np.unique(fp[:4])) == 12


def test_identical_fraction_counts_mixed_label_groups_with_identical_rows():
    X = np.array([[1.0, 2.0], [1.0, 2.0],             # group a: labels 0, 1, identical rows
                  [0.0, 1.0], [5.0, 1.0],             # group b: labels 0, 1, different rows
                  [3.0, 3.0], [3.0, 3.0],             # group c: one label only: not counted
                  [7.0, 7.0], [7.0, 7.0], [7.0, 7.5]])  # group d: labels 0, 1, 1; one row differs
    y = np.array([0, 1, 0, 1, 1, 1, 0, 1, 1])
    g = np.array(list("aabbccddd"))
    assert identical_fraction(X, y, g) == 1 / 3
    assert np.isnan(identical_fraction(X[4:6], y[4:6], g[4:6]))         # no group with both labels
    fp = np.zeros(len(y))                                               # colliding fingerprints: rows decide
    assert identical_fraction(X, y, g, fp=fp) == 1 / 3


def test_duplicate_samples_across_groups_only():
    fp = np.array([0.5, 0.5, 1.0, 1.0, 2.0, 0.5])
    groups = np.array(["a", "b", "c", "c", "d", "a"])
    assert duplicate_samples(fp, groups) == [(0, 1), (1, 5)]           # 2 and 3 share a group: fine
    assert duplicate_samples(np.zeros(4), np.arange(4)) == []           # all identical: zero variance instead


def test_cell_findings_severities():
    layers, positions = [0, 4], ["q_0", "latent_0", "resp_0"]
    full_at_embedding = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    f = cell_findings(full_at_embedding, np.zeros((2, 3), bool), np.zeros((2, 3), bool), layers, positions)
    assert [(x.kind, x.severity, x.cells) for x in f] == [("identical_features", "info", [(0, "q_0")])]
    ident = np.array([[1.0, 0.5, np.nan], [1.0, 0.2, 0.0]])
    zero_var = np.array([[False, False, True], [False, False, False]])
    const = np.array([[True, False, True], [False, True, False]])     # a full or zero-variance cell is not counted
    f = cell_findings(ident, zero_var, const, layers, positions)
    assert [(x.kind, x.severity, x.cells) for x in f] == [
        ("identical_features", "error", [(0, "q_0"), (4, "q_0")]),
        ("identical_features", "warning", [(0, "latent_0")]),
        ("zero_variance", "warning", [(0, "resp_0")]),
        ("constant_predictions", "warning", [(4, "latent_0")])]
    assert cell_findings(np.zeros((2, 3)), ~const & const, ~const & const, layers, positions) == []


def test_data_findings_groups_and_balance():
    y = np.array([0, 1] * 10)
    assert data_findings(y, np.arange(20), folds=5, regression=False) == []
    assert [f.kind for f in data_findings(y, np.arange(20) // 3, folds=5, regression=False)] == ["too_few_groups"]
    assert [f.kind for f in data_findings(y, np.arange(20), folds=12, regression=False)] == ["too_few_groups"]
    rare = np.array([1] * 3 + [0] * 17)                                # 15% minority
    f = data_findings(rare, np.arange(20), folds=5, regression=False)
    assert [(x.kind, x.severity) for x in f] == [("class_imbalance", "warning")] and "15.0%" in f[0].message
    assert data_findings(rare.astype(float) * 3.5, np.arange(20), folds=5, regression=True) == []


def test_grid_findings_solver_and_skipped_cells():
    nc = np.array([[False, True], [False, False]])
    sk = np.array([[False, False], [True, True]])
    f = grid_findings({"auroc_hi": np.full((2, 2), 0.9)}, [0, 1], ["a", "b"], nc, sk)
    assert [(x.kind, x.severity, x.cells) for x in f] == [("not_converged", "info", [(0, "b")]),
                                                          ("skipped_cells", "info", [(1, "a"), (1, "b")])]
    assert grid_findings({"r2": np.zeros((2, 2))}, [0, 1], ["a", "b"], None, None) == []


def test_label_in_text_marks_every_layer_at_the_positions_that_give_the_label_away():
    f = label_in_text(np.array([0.5, 0.97, np.nan, 1.0]), [3, 9], ["q_0", "q_1", "q_2", "q_3"])
    assert len(f) == 1 and f[0].kind == "label_in_text" and f[0].severity == "warning"
    assert f[0].cells == [(3, "q_1"), (3, "q_3"), (9, "q_1"), (9, "q_3")] and "up to 1.000" in f[0].message
    assert label_in_text(np.array([0.5, 0.97]), [0], ["a", "b"], threshold=0.98) == []
