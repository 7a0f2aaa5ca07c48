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
