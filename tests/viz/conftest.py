"""Fixtures: two small real ProbeGrids (4 and 8 layers) with a planted signal and known check findings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from viz_synthetic import make_grid  # noqa: E402

from probes.grid import ProbeGrid  # noqa: E402


@pytest.fixture(scope="session")
def grid() -> ProbeGrid:
    return make_grid()


@pytest.fixture(scope="session")
def big_grid() -> ProbeGrid:
    return make_grid(n_layers=8, model="bigger-model", seed=1)


@pytest.fixture(scope="session")
def neutral_grid():
    """An ablation-style neutral grid (grids.ResultGrid): effects per cell, no labels, no groups."""
    import numpy as np

    from grids import Finding, ResultGrid

    rng = np.random.default_rng(3)
    return ResultGrid([-1, 0, 1, 2], ["latent_2", "latent_0", "latent_1"],
                      {"delta_logp": rng.normal(size=(4, 3)), "answer_accuracy": rng.uniform(size=(4, 3))},
                      warnings=[Finding("no_effect", "nothing moved at <eot>", "warning", [(1, "latent_0")])],
                      config={"kind": "ablation", "model": "tiny-llama", "n_layers": 2, "n": 5})
