import numpy as np
import pytest

from probes.splits import check_splits, group_kfold, heldout_split, permute_labels


def test_group_kfold_groups_and_strata():
    y = np.array([0, 1] * 50 + [1] * 20)
    g = np.concatenate([np.repeat(np.arange(50), 2), 100 + np.arange(20)])
    folds = group_kfold(y, g, k=5, seed=3)
    assert len(folds) == 5
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(y)))
    for tr, te in folds:
        assert not set(g[tr]) & set(g[te])
        assert abs(y[te].mean() - y.mean()) < 0.1
    again = group_kfold(y, g, k=5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))


def test_check_splits_loud():
    g = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(AssertionError, match="group\\(s\\) in both train and test"):
        check_splits([(np.array([0, 2, 3]), np.array([1, 4, 5]))], g)
    with pytest.raises(AssertionError, match="in both train and test"):
        check_splits([(np.array([0, 1, 2]), np.array([2, 3]))], np.arange(6))
    X = np.arange(12.0).reshape(6, 2)
    X[5] = X[0]
    with pytest.raises(AssertionError, match="activation row\\(s\\) appear identically"):
        check_splits([(np.array([0, 1, 2, 3]), np.array([4, 5]))], g, X=X)
    with pytest.raises(ValueError, match="only 3 groups for 5 folds"):
        group_kfold(np.array([0, 1] * 3), g, k=5)


def test_heldout_and_permutation():
    y = np.array([0, 1] * 40)
    g = np.repeat(np.arange(40), 2)
    tr, te = heldout_split(y, g, test_size=0.25, seed=0)
    assert len(te) == 20 and not set(g[tr]) & set(g[te])
    rng = np.random.default_rng(0)
    p = permute_labels(y, g, rng)
    assert (p[::2] + p[1::2] == 1).all()                                     # each pair keeps one 0 and one 1
    assert 0 < (p != y).mean() < 1
    gc = np.arange(80)                                                        # one-label groups: shuffled across
    q = permute_labels(y, gc, rng)
    assert q.sum() == y.sum() and (q != y).any()


def test_movable_labels_are_the_labels_the_shuffle_moves():
    """Pairs mix labels (movable); one-label groups move only within a size that holds both labels. Checked against
    200 shuffles: a sample marked movable changes label in some shuffle, an unmovable one in none."""
    from probes.splits import movable_labels

    g = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 7])
    y = np.array([0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1])
    # groups 0,1: pairs; 2,3: size 2, both label 0 -> stuck; 4,5: size 3, both label 1 -> stuck; 6,7: size 1, 0 and 1
    want = [True] * 4 + [False] * 10 + [True] * 2
    assert movable_labels(y, g).tolist() == want
    rng = np.random.default_rng(0)
    moved = np.zeros(len(y), bool)
    for _ in range(200):
        moved |= permute_labels(y, g, rng) != y
    assert moved.tolist() == want
