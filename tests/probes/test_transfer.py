"""probes.transfer on planted data: a shared direction transfers, unrelated directions sit at chance; parity with
scikit-learn; the 1%-FPR threshold from the control set; bad input refused with the problem named."""

import doctest
import importlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import probes

D = 32


def _set(n_groups: int, directions: list[np.ndarray], rng, strength: float = 1.2):
    """Pairs (group = one question with labels 0 and 1); cell (layer l, position p) carries the label along
    directions[l] on top of unit noise and a per-group offset (what the question itself contributes)."""
    y, g = np.tile([0, 1], n_groups), np.repeat(np.arange(n_groups), 2)
    acts = rng.normal(size=(len(y), len(directions), 2, D)) + rng.normal(size=(n_groups, 1, 1, D)).repeat(2, 0)
    for li, w in enumerate(directions):
        acts[:, li] += strength * (y - 0.5)[:, None, None] * w
    return acts, y, g


def _unit(rng):
    w = rng.normal(size=D)
    return w / np.linalg.norm(w)


@pytest.fixture(scope="module")
def planted():
    """Layer 0: train and test share one direction. Layer 1: train along w1, test and control along w2, a
    direction orthogonal to w1."""
    rng = np.random.default_rng(0)
    shared, w1, w2 = _unit(rng), _unit(rng), _unit(rng)
    w2 = w2 - (w2 @ w1) * w1                                      # unrelated: orthogonal to the trained direction
    shared, w1, w2 = 3 * shared, 3 * w1, 3 * w2 / np.linalg.norm(w2)
    train = _set(100, [shared, w1], rng)
    test = _set(100, [shared, w2], rng)
    control = _set(100, [shared, w2], rng)
    grid = probes.transfer(*train, *test, control=control[0], control_y=control[1], n_bootstrap=500)
    return grid, train, test, control


def test_shared_direction_transfers(planted):
    grid = planted[0]
    for p in ("0", "1"):
        assert grid.sel("auroc", 0, p) > 0.9
        assert grid.sel("auroc_lo", 0, p) > 0.85
        assert grid.sel("recall_at_1pct_fpr", 0, p) > 0.3
        assert grid.sel("test_fpr_at_threshold", 0, p) < 0.05      # the control threshold holds on new data
        assert grid.sel("control_auroc", 0, p) > 0.9
        assert grid.sel("n_test", 0, p) == 200


def test_unrelated_directions_sit_at_chance(planted):
    grid = planted[0]
    for p in ("0", "1"):
        assert grid.sel("train_auroc", 1, p) > 0.9                    # the probe did learn w1 ...
        assert abs(grid.sel("auroc", 1, p) - 0.5) < 0.1              # ... which says nothing about w2
        assert grid.sel("auroc_lo", 1, p) < 0.5 < grid.sel("auroc_hi", 1, p)
        assert grid.sel("recall_at_1pct_fpr", 1, p) < 0.1


def test_parity_with_sklearn_fit_on_train_score_on_test(planted):
    """One C (no inner search): the test scores are scikit-learn's StandardScaler + LogisticRegression fitted on
    the whole training set, and the AUROC and its group-bootstrap CI follow from them."""
    _, (a, ya, ga), (b, yb, gb), _ = planted
    grid = probes.transfer(a, ya, ga, b, yb, gb, Cs=(0.1,), tol=1e-8, max_iter=5000, n_bootstrap=300)
    for li in range(2):
        for pi in range(2):
            pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-10, max_iter=20000))
            ref = pipe.fit(a[:, li, pi], ya).decision_function(b[:, li, pi])
            assert np.corrcoef(grid.scores[li, pi], ref)[0, 1] > 0.9999
            assert grid.sel("auroc", li, str(pi)) == pytest.approx(roc_auc_score(yb, ref), abs=0.002)
            lo, hi = probes.metrics.group_bootstrap_auroc(grid.scores[li, pi][None], yb, gb, 300, 0)
            assert (grid.sel("auroc_lo", li, str(pi)), grid.sel("auroc_hi", li, str(pi))) == (lo[0], hi[0])
    assert "recall_at_1pct_fpr" not in grid.metrics and grid.config["n_control"] == 0


def test_threshold_is_one_percent_fpr_on_the_control_negatives(planted):
    """With the test set as its own control the threshold is the 99th percentile of the test negatives' scores."""
    _, train, (b, yb, gb), _ = planted
    grid = probes.transfer(*train, b, yb, gb, control=b, control_y=yb, control_groups=gb, n_bootstrap=50)
    for li in range(2):
        for pi in range(2):
            s = grid.scores[li, pi]
            thr = np.quantile(s[yb == 0], 0.99)
            assert grid.sel("recall_at_1pct_fpr", li, str(pi)) == pytest.approx(np.mean(s[yb == 1] > thr))
            assert grid.sel("test_fpr_at_threshold", li, str(pi)) == pytest.approx(np.mean(s[yb == 0] > thr))
            assert grid.sel("test_fpr_at_threshold", li, str(pi)) <= 0.01
            assert grid.sel("control_auroc", li, str(pi)) == pytest.approx(grid.sel("auroc", li, str(pi)))


def test_bad_input_is_refused_with_the_problem_named(planted):
    _, (a, ya, ga), (b, yb, gb), (c, yc, _) = planted
    with pytest.raises(ValueError, match=r"the train set has layers \[0, 1\], the test set \[0\]"):
        probes.transfer(a, ya, ga, b[:, :1], yb, gb)
    with pytest.raises(ValueError, match=r"the train set has positions \['0', '1'\], the test set \['0'\]"):
        probes.transfer(a, ya, ga, b[:, :, :1], yb, gb)
    with pytest.raises(ValueError, match="the test activations have width d=16, the train activations d=32"):
        probes.transfer(a, ya, ga, b[..., :16], yb, gb)
    with pytest.raises(ValueError, match="the control activations have width d=16"):
        probes.transfer(a, ya, ga, b, yb, gb, control=c[..., :16], control_y=yc)
    with pytest.raises(ValueError, match=r"the control set has one class only \(\[1\]\) and no negatives: the "
                                         r"threshold is set at 1% false positives on its negatives"):
        probes.transfer(a, ya, ga, b, yb, gb, control=c[yc == 1], control_y=yc[yc == 1])
    with pytest.raises(ValueError, match=r"the test set has one class only \(\[1\]\)"):
        probes.transfer(a, ya, ga, b[yb == 1], yb[yb == 1], gb[yb == 1])
    with pytest.raises(ValueError, match=r"the train set has labels \[0, 1, 2\]"):
        probes.transfer(a, ya * 2 - ya % 2 + (ga % 3 == 0), ga, b, yb, gb)


def test_negatives_only_control_sets_the_same_threshold(planted):
    """Apollo's control data is all honest: a control set of negatives alone is accepted, and it gives the threshold,
    recall and test FPR of the full control set (only its negatives ever set the threshold; equal up to float
    summation order, as the fit reads the stacked rows); its AUROC is undefined (NaN), the one metric that needs
    positives."""
    _, train, test, (c, yc, gc) = planted
    full = probes.transfer(*train, *test, control=c, control_y=yc, control_groups=gc, n_bootstrap=50)
    neg = probes.transfer(*train, *test, control=c[yc == 0], control_y=yc[yc == 0], n_bootstrap=50)
    for k in ("threshold_1pct_fpr", "recall_at_1pct_fpr", "test_fpr_at_threshold", "auroc", "n_control_negatives"):
        np.testing.assert_allclose(full.metrics[k], neg.metrics[k], rtol=1e-5)
    assert np.isnan(neg.metrics["control_auroc"]).all() and np.isfinite(full.metrics["control_auroc"]).all()
    assert (neg.metrics["n_control_negatives"] == 100).all() and neg.config["n_control"] == 100


def test_caches_of_different_models_are_refused():
    import interp

    prompts = ["The capital of France is", "Two plus two is", "The sky is blue", "Water is wet"]
    y, g = np.array([0, 1, 0, 1]), np.arange(4)
    ca = interp.cache(interp.load_model("tiny-llama"), prompts)
    cb = interp.cache(interp.load_model("tiny-gpt2"), prompts)
    layers, positions = [0, 1], ["tok_0", "tok_1"]
    with pytest.raises(ValueError, match="the train activations come from model 'tiny-llama', the test activations "
                                         "from 'tiny-gpt2'"):
        probes.transfer(ca, y, g, cb, y, g, layers=layers, positions=positions, Cs=(1.0,))
    same = probes.transfer(ca, y, g, ca, y, g, layers=layers, positions=positions, Cs=(1.0,), n_bootstrap=20)
    assert same.config["train_meta"]["model"] == "tiny-llama" and same.scores.shape == (2, 2, 4)


def test_doctests_run():
    assert doctest.testmod(importlib.import_module("probes.transfer")).failed == 0
