"""Fixtures of the interventions tests (inputs in interventions_fixtures.py): tiny CODI models, one torch thread."""

from __future__ import annotations

import pytest
import torch
from interventions_fixtures import tiny_codi

from codi.model import CODIModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is ~50x faster than two on a loaded 2-core machine (no spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llama() -> CODIModel:
    return tiny_codi("tiny-llama")


@pytest.fixture(scope="module")
def gpt2() -> CODIModel:
    return tiny_codi("tiny-gpt2")
