"""The positive control: on the shipped organism whose thoughts do the work, the probe, lens and patching studies
find each step's value in the thoughts and the answer follows them (the issue's bars)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import codi
from app.organism_study import study


@pytest.fixture(scope="module")
def result():
    torch.set_num_threads(1)
    cm, _ = codi.organisms.load("pointer3")
    return study(cm, codi.organisms.task_of("pointer3"), n=500, n_pairs=200, n_permutations=10)


def test_each_step_value_is_decodable_from_its_thought(result):
    """pointer3 has one thought per hop: the node after hop s is read best from thought s-1 (layer 0 = its input)."""
    latents = ["latent_0", "latent_1", "latent_2"]
    for s in (1, 2, 3):
        g = result.probe[s]
        layer, pos = g.best("accuracy", positions=latents)
        assert pos == f"latent_{s - 1}", (s, layer, pos)
        assert g.sel("accuracy", layer, pos) >= 0.9, (s, layer, pos)
        assert g.sel("accuracy_lo", layer, pos) > 2 * g.sel("chance", layer, pos)
        assert g.sel("p_value", layer, pos) == pytest.approx(1 / 11)
        assert g.sel("p_corrected", layer, pos) == pytest.approx(1 / 11)
    # the next thought still carries the previous node in part (measured 0.78 for hop 1 at latent_1), but less
    assert result.probe[1].sel("accuracy", 0, "latent_1") < result.probe[1].sel("accuracy", 0, "latent_0") - 0.1


def test_logit_lens_reads_thought_j_as_the_value_after_hop_j_plus_1(result):
    k = result.lens.shape[0]
    assert np.all(np.diag(result.lens[:, :k]) >= 0.9), result.lens
    off = result.lens[:, :k][~np.eye(k, dtype=bool)]
    assert np.all(off <= 0.05), result.lens


def test_patching_a_thought_moves_the_answer_to_the_counterfactual_one(result):
    for s, rate in result.counterfactual.items():
        assert rate >= 0.8, (s, rate)
    g = result.patch[1]
    q0 = g.sel("clean_accuracy", layer=0, position="q_0")     # an edge token shared by both runs: no effect
    assert q0 <= 0.05


def test_markdown_holds_the_three_tables(result):
    md = result.markdown()
    assert "| step | best cell | accuracy |" in md and "| thought |" in md and "counterfactual answer" in md
