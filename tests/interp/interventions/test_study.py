"""interp.interventions.study: layer arguments, cell order, the NaN-aware mean against numpy, and the CellStudy
skeleton: an empty edit group scores as the baseline, per-cell values land in their (layer, position), the grid
carries the model's facts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from interventions_fixtures import PROBS, qa

from interp.interventions.batch import prepare
from interp.interventions.engine import INPUT, Edit, from_run
from interp.interventions.study import CellStudy, cells_of, grid_config, nanmean, parse_layers


def test_parse_layers_and_cells(llama):
    assert parse_layers(llama, "all") == [INPUT, 0, 1, 2]
    assert parse_layers(llama, "input") == [INPUT] and parse_layers(llama, 2) == [2]
    assert parse_layers(llama, ["input", 0, -1]) == [INPUT, 0, INPUT]
    for bad in (3, "3", [1.5], ["first"]):
        with pytest.raises(ValueError, match=r"use 'input' \(the fed-back thought\) or an int 0..2"):
            parse_layers(llama, bad)
    assert cells_of([INPUT, 1], ["q_0", "latent_0", "eot"]) == [(INPUT, "latent_0"), (1, "q_0"), (1, "latent_0"),
                                                                (1, "eot")]
    with pytest.raises(ValueError, match="exists only at latent_\\* positions"):
        cells_of([INPUT], ["bot", "eot"])


def test_nanmean_equals_numpy_without_warnings():
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    x[0, 1, [0, 3]] = np.nan
    x[2, 2] = np.nan  # a cell without any value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nanmean(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.nanmean(x, -1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.isnan(got[2, 2]) and np.isfinite(got).sum() == 11


def test_cell_study_skeleton(llama):
    qs, ans = qa(PROBS)
    st = CellStudy.open(llama, "ablation", prepare(llama, qs, ans), ["input", 1], ["bot", "latent_2"], record=[1])
    assert st.layers == [INPUT, 1] and st.columns == ["bot", "latent_2"]
    assert st.cells == [(INPUT, "latent_2"), (1, "bot"), (1, "latent_2")]
    assert st.base.plan.labels == ["bot", "latent_2"] and sorted(st.base.resid) == [1]
    s = st.run([[], [Edit(1, "latent_2")], []], cells_per_pass=2, progress=False)
    for k, v in st.base.scores.items():  # an empty edit group is the unedited run, in any pack
        torch.testing.assert_close(s[k][0], v, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(s[k][2], v, rtol=1e-5, atol=1e-5)
    per = st.per_cell({"x": torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])})["x"]
    assert per.shape == (2, 2, 3) and np.isnan(per[0, 0]).all()  # no 'input' cell at bot
    assert per[0, 1].tolist() == [1.0, 2.0, 3.0] and per[1, 0].tolist() == [4.0, 5.0, 6.0]
    assert per[1, 1].tolist() == [7.0, 8.0, 9.0]
    g = st.grid({"m": nanmean(per)}, per, mode="zero")
    assert g.layers == [INPUT, 1] and g.positions == ["bot", "latent_2"] and g.sel("m", 1, "bot") == 5.0
    assert g.config.kind == "ablation" and g.config["n"] == 3 and g.config["mode"] == "zero"
    want = dict(kind="ablation", model=llama.base_name, n_layers=2, d_model=64, num_latents=3)
    assert {k: grid_config(llama, "ablation")[k] for k in want} == want


def test_a_study_on_a_baseline_made_elsewhere(llama, refused):
    """CellStudy.open(base=): the study takes a baseline already run (attribution's gradient run, through
    engine.from_run) instead of running one: same labels, cells and edited scores as a study that ran its own;
    record= or extra= beside base= are refused (they describe a run that will not happen)."""
    qs, ans = qa(PROBS)
    b = prepare(llama, qs, ans)
    run = llama.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_prompt_state=True)
    own = CellStudy.open(llama, "ablation", b, [1], "latents")
    made = CellStudy.open(llama, "ablation", b, [1], "latents", base=from_run(llama, b, run, "latents"))
    assert made.cells == own.cells and made.base.run is run
    groups = [[Edit(1, "latent_1")], [Edit(1, "latent_2")]]
    s_own, s_made = own.run(groups, progress=False), made.run(groups, progress=False)
    assert all(torch.equal(s_own[k], s_made[k]) for k in s_own)
    msg = refused(lambda: CellStudy.open(llama, "ablation", b, [1], "latents", record=[1], base=made.base),
                  ValueError, "record=[1]", "base=")
    assert "when making that baseline" in msg
