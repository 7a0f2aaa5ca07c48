"""probes.fitting: the per-chunk fits of the sweep, against scikit-learn on the same folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes.fitting import fit_chunk_ridge, inner_masks_for
from probes.splits import group_kfold


@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_ridge_held_out_predictions_equal_sklearn_with_the_scaler_in_each_fold(alpha):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 50, 6))                                    # two cells
    y = X[0, :, 0] - 0.5 * X[1, :, 2] + 0.3 * rng.normal(size=50)
    g = np.repeat(np.arange(25), 2)
    splits = group_kfold(y, g, k=5, stratified=False)
    out = fit_chunk_ridge(torch.as_tensor(X), y, g, splits, np.zeros((0, 50)), (alpha,), inner_folds=3, seed=0,
                          null_splits=5)
    for cell in range(2):
        want = np.full(50, np.nan)
        for tr, te in splits:
            want[te] = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X[cell, tr], y[tr]).predict(X[cell, te])
        np.testing.assert_allclose(out["scores"][cell], want, rtol=1e-6, atol=1e-8)
    assert out["fold_auroc"].shape == (2, 5) and np.allclose(out["log10_C"], np.log10(alpha))


def test_inner_masks_partition_each_training_fold_by_group():
    y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    splits = group_kfold(y, g, k=4)
    for (tr, _), masks in zip(splits, inner_masks_for(splits, y, g, inner_folds=3, seed=0)):
        assert masks.shape == (3, len(tr))
        held = masks == 0                                               # each sample held out in exactly one fold
        assert (held.sum(0) == 1).all()
        for fold in held:                                                # groups never split across inner folds
            assert not set(g[tr][fold]) & set(g[tr][~fold])
