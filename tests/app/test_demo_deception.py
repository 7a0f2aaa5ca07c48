"""app.demo_deception pieces on planted data (fast; the real-weight run is tests/app/test_demo.py): cell numbers
equal the grid's, the transfer headline cell is chosen on the training set only, the instruction effect counts
per question, and the text-baseline summary reports where the label is in the text."""

import numpy as np
import pandas as pd
import pytest

import probes
from app.demo_deception import _headline, cell_numbers, instruction_effect, label_in_text_summary
from interp.behaviour import BehaviourResult


@pytest.fixture(scope="module")
def grid_with_text():
    """Label planted in the activations at latent_1 (layer 1 only) and in the words at 'resp_0'."""
    rng = np.random.default_rng(0)
    y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    pos = ["latent_0", "latent_1", "resp_0"]
    acts = rng.normal(size=(60, 2, 3, 6))
    acts[:, 1, 1] += 2.5 * (y - 0.5)[:, None]
    texts = [[[f"q{gi}"], [f"q{gi}"], [f"q{gi}", "lie" if yi else "truth"]] for yi, gi in zip(y, g)]
    grid = probes.sweep(acts, labels=y, groups=g, layers=[0, 1], positions=pos, Cs=(1.0,), n_permutations=10,
                        n_bootstrap=200, progress=False)
    return probes.text_baseline(grid, texts)


def test_cell_numbers_are_the_grids(grid_with_text):
    g = grid_with_text
    c = cell_numbers(g, 1, "latent_1")
    for k in ("auroc", "auroc_lo", "auroc_hi", "p_value", "p_corrected", "text_auroc", "gain", "gain_lo", "gain_hi"):
        assert c[k] == pytest.approx(float(g.sel(k, 1, "latent_1"))), k
    assert c["auroc"] > 0.9 and c["text_auroc"] == pytest.approx(0.5) and c["gain_lo"] > 0


def test_label_in_text_summary(grid_with_text):
    t = label_in_text_summary(grid_with_text)
    assert t["fires"] and t["positions"] == ["resp_0"] and t["max_text_auroc"] == pytest.approx(1.0)
    assert t["n_positions"] == 3 and "read the" in t["message"]


def test_headline_cell_comes_from_the_training_grid(grid_with_text):
    """The transfer grid may lack layers or positions of the training grid: the headline is the training grid's
    best cell among the cells the transfer grid has, never one picked on the test set."""
    class Transfer:
        layers, positions = [1], ["latent_0", "latent_1"]
    assert _headline(grid_with_text, "latent", Transfer) == (1, "latent_1")
    Transfer.layers = [0]
    assert _headline(grid_with_text, "latent", Transfer) == grid_with_text.best("auroc", positions=["latent_0",
                                                                                                   "latent_1"],
                                                                                 layers=[0])
    assert _headline(grid_with_text, "response", Transfer) is None


def _res(stated, labels, ids=None):
    ids = ids or [f"q{i}" for i in range(len(stated))]
    return BehaviourResult(None, pd.DataFrame({"id": ids, "stated_answer": stated, "label": labels}), {})


def test_instruction_effect_counts_per_question():
    none = _res(["5", "7", "9", "1", ""], [0, 1, 0, 0, -1])
    lie = _res(["6", "7", "9", "1", "3"], [1, 1, 0, 0, 1])
    assert instruction_effect(none, lie) == {"n": 5, "changed": 2, "true_without": 3, "true_to_false": 1,
                                             "false_to_true": 0}
    with pytest.raises(ValueError, match="asked different questions"):
        instruction_effect(none, _res(["6"] * 5, [1] * 5, ids=[f"x{i}" for i in range(5)]))
