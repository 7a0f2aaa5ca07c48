"""interp.interventions.organism on the shipped organism pointer2 (2 thoughts carry the 2 hops): the lens on each
thought, recomputed through the CODI cache's latent views; counterfactual patching, recomputed with `patch()` on the
same pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import codi
import interp
from interp.interventions.organism import counterfactual_patching, thought_lens
from interp.interventions.patch import patch


@pytest.fixture(scope="module")
def organism():
    cm, make = codi.organisms.load("pointer2")
    return cm.eval(), make


def test_thought_lens_equals_the_lm_head_on_the_cached_latent_views(organism):
    cm, make = organism
    problems = make(40, seed=5)
    rate = thought_lens(cm, problems)
    # oracle: the same reading through another path, the CODI cache's pre-projection views (HF hidden_states[-1])
    c = interp.cache(cm, [p.question for p in problems], layers=[0], positions=["bot"], progress=False)
    top = cm.model.get_output_embeddings()(
        torch.from_numpy(c.extras["latent_pre_prj"]).to(cm.device)).argmax(-1)
    want = np.zeros((2, 2))
    for j in range(2):
        words = cm.tokenizer.convert_ids_to_tokens(top[:, j].tolist())
        for s in range(2):
            want[j, s] = np.mean([w == str(p.values[s]) for w, p in zip(words, problems)])
    np.testing.assert_array_equal(rate, want)
    # positive control: thought j reads out the value after hop j+1, and not the other one (measured: identity)
    assert rate[0, 0] > 0.9 and rate[1, 1] > 0.9 and rate[0, 1] < 0.1 and rate[1, 0] < 0.1, rate


def test_counterfactual_patching_is_patch_on_the_steps_pairs(organism):
    cm, _ = organism
    task = codi.organisms.task_of("pointer2")
    grids, rate = counterfactual_patching(cm, task, n_pairs=8, seed=5)
    assert sorted(grids) == sorted(rate) == [1, 2]
    for s, g in grids.items():
        clean, corrupt = task.pairs(8, seed=5, step=s)
        ref = patch(cm, clean, corrupt, progress=False)
        for name, values in ref.metrics.items():
            np.testing.assert_array_equal(g.metrics[name], values)
        latents = [j for j, p in enumerate(g.positions) if p.startswith("latent_")]
        assert rate[s] == np.nanmax(g.metrics["clean_accuracy"][:, latents])
