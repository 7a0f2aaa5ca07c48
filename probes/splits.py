"""Group-aware, stratified splits, and the assertions that keep them honest.

A group is everything that must stay on one side of a split (e.g. the honest and the lying variant of one
question). Every splitter here returns a list of (train_idx, test_idx) integer arrays and checks itself.

    >>> import numpy as np
    >>> from probes.splits import group_kfold, check_splits
    >>> y = np.array([0, 1] * 10); g = np.repeat(np.arange(10), 2)
    >>> folds = group_kfold(y, g, k=5, seed=0)
    >>> check_splits(folds, g)          # raises if a group sits in train and test
    >>> check_splits([(np.arange(0, 11), np.arange(11, 20))], g)    # sample 10 and 11 are one group
    Traceback (most recent call last):
    ...
    AssertionError: split 0: 1 group(s) in both train and test, e.g. ['5']: use a group-aware splitter ...
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
from jaxtyping import Shaped
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

Split = tuple[np.ndarray, np.ndarray]


def _as_codes(groups: Shaped[np.ndarray, " sample"]) -> np.ndarray:
    """Groups of any dtype -> integer codes 0..n_groups-1 (in order of first appearance)."""
    _, first, codes = np.unique(np.asarray(groups).astype(str), return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[codes]


def group_kfold(y: Shaped[np.ndarray, " sample"], groups: Shaped[np.ndarray, " sample"], k: int = 5,
                seed: int = 0, stratified: bool = True) -> list[Split]:
    """k group-aware folds; stratified on y (classification) so each fold keeps the class balance.

    For continuous y pass stratified=False. Raises if there are fewer groups than folds.

    >>> y, groups = np.array([0, 1] * 10), np.repeat(np.arange(10), 2)     # 10 pairs
    >>> folds = group_kfold(y, groups, k=5, seed=0)                         # [(train_idx, test_idx), ...]
    >>> [len(te) for _, te in folds], [float(y[te].mean()) for _, te in folds]   # 2 pairs per test fold, balanced
    ([4, 4, 4, 4, 4], [0.5, 0.5, 0.5, 0.5, 0.5])
    >>> sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(20))   # each sample tested once
    True
    """
    y = np.asarray(y)
    codes = _as_codes(groups)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if k < 2:
        raise ValueError(f"k={k} folds: need at least 2; pass folds=2 or more")
    if n_groups < k:
        raise ValueError(f"only {n_groups} groups for {k} folds: every fold needs at least one group; "
                         f"pass fewer folds or more samples")
    if stratified:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            # A class with fewer members than folds (a rare value of a multiclass target) cannot reach every test
            # fold; scikit-learn warns and still returns valid group folds, and the metrics score each sample once
            # wherever it lands, so the warning says nothing a user must act on.
            warnings.filterwarnings("ignore", message="The least populated class in y has only",
                                    category=UserWarning)
            splits = [(np.sort(tr), np.sort(te)) for tr, te in cv.split(np.zeros(len(y)), y, codes)]
    else:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n_groups)
        fold_of_group = np.empty(n_groups, dtype=int)
        fold_of_group[perm] = np.arange(n_groups) % k
        f = fold_of_group[codes]
        splits = [(np.flatnonzero(f != i), np.flatnonzero(f == i)) for i in range(k)]
    check_splits(splits, groups)
    return splits


def heldout_split(y: Shaped[np.ndarray, " sample"], groups: Shaped[np.ndarray, " sample"],
                  test_size: float = 0.2, seed: int = 0, stratified: bool = True) -> Split:
    """One group-aware train/test split (stratified by taking one fold of round(1/test_size) folds).

    >>> y, groups = np.array([0, 1] * 10), np.repeat(np.arange(10), 2)
    >>> train_idx, test_idx = heldout_split(y, groups, test_size=0.25, seed=0)
    >>> len(train_idx), len(test_idx), bool(set(groups[train_idx]) & set(groups[test_idx]))
    (14, 6, False)
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size}: pass a fraction between 0 and 1")
    if stratified:
        k = max(2, int(round(1 / test_size)))
        split = group_kfold(y, groups, k=k, seed=seed, stratified=True)[0]
    else:
        gss = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        tr, te = next(gss.split(np.zeros(len(y)), y, _as_codes(groups)))
        split = (np.sort(tr), np.sort(te))
    check_splits([split], groups)
    return split


def _row_hashes(X: Shaped[np.ndarray, "sample ..."]) -> np.ndarray:
    """One hash string per row of X (exact bytes), to find duplicate activation rows."""
    X = np.ascontiguousarray(X.reshape(len(X), -1))
    return np.array([hashlib.blake2b(r.tobytes(), digest_size=12).hexdigest() for r in X])


def check_splits(splits: list[Split], groups: Shaped[np.ndarray, " sample"],
                 X: Shaped[np.ndarray, "sample ..."] | None = None) -> None:
    """Raise AssertionError if any split leaks: a group (or, given X, an identical activation row) in both
    train and test, an index in both, an empty side, or indices out of range.

    Duplicate rows inside one side are fine; across sides they make test scores meaningless.

    >>> g = np.array([0, 0, 1, 1, 2, 2])
    >>> check_splits([(np.array([0, 1, 2, 3]), np.array([4, 5]))], g)          # fine: returns None
    >>> X = np.arange(12.0).reshape(6, 2); X[5] = X[0]                          # sample 5 copies sample 0
    >>> check_splits([(np.array([0, 1, 2, 3]), np.array([4, 5]))], g, X=X)
    Traceback (most recent call last):
    ...
    AssertionError: split 0: 1 activation row(s) appear identically in train and test (rows [0, 5]): ...
    """
    groups = np.asarray(groups).astype(str)
    n = len(groups)
    hashes = _row_hashes(X) if X is not None else None
    for i, (tr, te) in enumerate(splits):
        tr, te = np.asarray(tr), np.asarray(te)
        if len(tr) == 0 or len(te) == 0:
            raise AssertionError(f"split {i}: empty {'train' if len(tr) == 0 else 'test'} side")
        if tr.min() < 0 or te.min() < 0 or max(tr.max(), te.max()) >= n:
            raise AssertionError(f"split {i}: indices out of range for {n} samples")
        both = np.intersect1d(tr, te)
        if len(both):
            raise AssertionError(f"split {i}: {len(both)} sample(s) in both train and test, e.g. {both[:5]}")
        shared = np.intersect1d(groups[tr], groups[te])
        if len(shared):
            raise AssertionError(f"split {i}: {len(shared)} group(s) in both train and test, e.g. "
                                 f"{shared[:5].tolist()}: use a group-aware splitter (probes.splits.group_kfold)")
        if hashes is not None:
            dup = np.intersect1d(hashes[tr], hashes[te])
            if len(dup):
                rows = np.flatnonzero(np.isin(hashes, dup))[:6]
                raise AssertionError(f"split {i}: {len(dup)} activation row(s) appear identically in train and "
                                     f"test (rows {rows.tolist()}): deduplicate the samples or give duplicates "
                                     f"the same group")


def permute_labels(y: Shaped[np.ndarray, " sample"], groups: Shaped[np.ndarray, " sample"],
                   rng: np.random.Generator) -> np.ndarray:
    """Group-level label shuffle for permutation tests.

    Groups whose samples carry different labels (paired designs) get their labels shuffled inside the group;
    groups of one label exchange labels with other such groups of the same size. So the shuffle keeps the
    group structure that the splits respect.

    >>> y, pairs = np.array([0, 1] * 4), np.repeat(np.arange(4), 2)
    >>> p = permute_labels(y, pairs, np.random.default_rng(0))
    >>> p.tolist(), bool((p[::2] + p[1::2] == 1).all())          # each pair keeps one 0 and one 1
    ([0, 1, 0, 1, 0, 1, 1, 0], True)
    >>> permute_labels(np.array([0, 0, 1, 1, 1, 0]), np.arange(6), np.random.default_rng(0)).tolist()
    [1, 1, 0, 1, 0, 0]
    """
    y = np.asarray(y)
    out = y.copy()
    mixed, constant = _label_groups(y, groups)
    for idx in mixed:
        out[idx] = y[idx][rng.permutation(len(idx))]
    for same_size in constant.values():
        labels = np.array([y[idx[0]] for idx in same_size])
        labels = labels[rng.permutation(len(labels))]
        for idx, lab in zip(same_size, labels):
            out[idx] = lab
    return out


def movable_labels(y: Shaped[np.ndarray, " sample"], groups: Shaped[np.ndarray, " sample"]) -> np.ndarray:
    """Which samples' labels `permute_labels` can change: those of groups with mixed labels, and those of one-label
    groups whose same-size groups do not all share one label. When none can (a label tied to the group size, e.g.
    every 3-sample group deceptive and every 2-sample group honest), every shuffle returns the real labels.

    >>> movable_labels(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])).tolist()             # paired: all
    [True, True, True, True]
    >>> movable_labels(np.array([0, 0, 1, 1, 1]), np.array([0, 0, 1, 1, 1])).tolist()       # sizes 2 and 3: none
    [False, False, False, False, False]
    """
    y = np.asarray(y)
    out = np.zeros(len(y), bool)
    mixed, constant = _label_groups(y, groups)
    for idx in mixed:
        out[idx] = True
    for same_size in constant.values():
        if len({y[idx[0]] for idx in same_size}) > 1:
            out[np.concatenate(same_size)] = True
    return out


def _label_groups(y: np.ndarray, groups: np.ndarray) -> tuple[list[np.ndarray], dict[int, list[np.ndarray]]]:
    """The sample indices of each group, in group order: (groups whose samples carry different labels, one-label
    groups keyed by their size), the two kinds `permute_labels` shuffles differently."""
    codes = _as_codes(groups)
    order = np.argsort(codes, kind="stable")
    mixed: list[np.ndarray] = []
    constant: dict[int, list[np.ndarray]] = {}
    for idx in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        if np.all(y[idx] == y[idx[0]]):
            constant.setdefault(len(idx), []).append(idx)
        else:
            mixed.append(idx)
    return mixed, constant
