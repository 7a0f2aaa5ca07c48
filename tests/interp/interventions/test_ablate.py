"""Ablation (interp/interventions/ablate.py), through the old home `interp.patching` as users call it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interventions_fixtures import PROBS

from interp import patching as P
from interp.interventions.engine import INPUT


def test_ablate_batched_equals_cell_by_cell_and_modes(llama):
    kw = dict(positions="latents", layers="all", progress=False)
    g1 = P.ablate(llama, PROBS, mode="resample", **kw)
    g2 = P.ablate(llama, PROBS, mode="resample", cells_per_pass=1, share_prompt=False, **kw)
    for k in g1.metrics:
        np.testing.assert_allclose(g1.metrics[k], g2.metrics[k], rtol=0, atol=1e-4)
    assert g1.config["baseline"]["answer_logp"] == pytest.approx(
        g1.metrics["answer_logp"][-1, -1] - g1.metrics["delta_logp"][-1, -1]
    )
    # mean over a single problem = its own value: no change, exactly (cell by cell keeps the batch identical)
    g = P.ablate(llama, PROBS[:1], mode="mean", cells_per_pass=1, **kw)
    assert np.all(g.metrics["delta_logp"] == 0) and np.all(g.metrics["delta_margin"] == 0)
    # Llama adds nothing to inputs_embeds: zeroing the fed-back thought == zeroing the layer-0 residual there
    z = P.ablate(llama, PROBS, mode="zero", **kw)
    np.testing.assert_array_equal(z.sel("answer_logp", layer=INPUT), z.sel("answer_logp", layer=0))
    assert not np.allclose(z.metrics["delta_logp"], 0)
    # ablating a set together
    t = P.ablate(
        llama, PROBS, positions=["latent_0", "latent_2"], layers=["input"], together=True, progress=False
    )
    assert t.positions == ["latent_0+latent_2"] and t.metrics["answer_logp"].shape == (1, 1)


def test_gpt2_input_level_differs_from_layer0(gpt2):
    """GPT-2 adds position embeddings after the fed-back thought: input-level and layer-0 ablations differ."""
    z = P.ablate(gpt2, PROBS, positions="latents", layers=["input", 0], mode="zero", progress=False)
    assert not np.allclose(z.sel("answer_logp", layer=INPUT), z.sel("answer_logp", layer=0))


def test_bad_input(llama):
    with pytest.raises(ValueError, match="mode="):
        P.ablate(llama, PROBS, mode="noise")
    with pytest.raises(ValueError, match="no answer"):
        P.ablate(llama, ["3 + 4 = ?"])
    with pytest.raises(ValueError, match="latent_\\* positions"):
        P.ablate(llama, PROBS, positions=["bot"], layers=["input"], progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        P.ablate(llama, PROBS, positions=["latent_7"], progress=False)
    with pytest.raises(ValueError, match="0..2"):
        P.ablate(llama, PROBS, layers=[5])
    with pytest.raises(TypeError, match="not a CODI model"):
        P.ablate(object(), PROBS)
    with pytest.raises(ValueError, match="d_model=64"):
        P.steer(llama, PROBS, torch.zeros(3), progress=False)


def test_grid_roundtrip_and_heatmap(llama, tmp_path):
    import viz

    g = P.ablate(llama, PROBS, positions="latents", layers=["input", 1], progress=False)
    g2 = type(g).load(g.save(tmp_path / "g"))
    np.testing.assert_array_equal(g2.metrics["delta_logp"], g.metrics["delta_logp"])
    fig = viz.heatmap(g, metric="delta_logp", chance=0.0)
    assert list(fig.data[0].y) == [-1, 1]


def test_mean_and_resample_write_the_values_they_name(llama):
    """Recomputed through the engine with hand-made edits: "mean" writes the mean over the problems, "resample"
    another problem's value (for 3 problems a derangement is one of the two cyclic shifts), never its own."""
    from interventions_fixtures import qa as split

    from interp.interventions.batch import prepare
    from interp.interventions.engine import Edit, baseline, run_cells

    b = prepare(llama, *split(PROBS))
    base = baseline(llama, b, [1], "latents")
    ref = base.scores["answer_logp"].numpy()
    for layer, label in [(INPUT, "latent_1"), (1, "latent_0")]:
        acts = base.latent_inputs[:, 1] if layer == INPUT else base.resid[1][:, base.plan.labels.index(label)]

        def change(value):
            return run_cells(llama, b, [[Edit(layer, label, value)]], base.plan)["answer_logp"][0].numpy() - ref

        kw = dict(positions=[label], layers=["input" if layer == INPUT else layer], progress=False)
        mean = P.ablate(llama, PROBS, mode="mean", **kw).scores[0, 0]
        np.testing.assert_allclose(mean, change(acts.mean(0)), rtol=0, atol=1e-5)
        res = P.ablate(llama, PROBS, mode="resample", **kw).scores[0, 0]
        assert any(np.allclose(res, change(acts.roll(k, 0)), rtol=0, atol=1e-5) for k in (1, 2)), res
        assert np.abs(res).max() > 1e-4                               # not the problems' own values


def test_bad_arguments_are_refused_before_any_forward_call(llama):
    calls = []
    hook = llama.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match="mode='resample': needs at least 2 problems"):
            P.ablate(llama, PROBS[:1], mode="resample", progress=False)
        with pytest.raises(ValueError, match="reference=<problems>: is used only by mode='mean'"):
            P.ablate(llama, PROBS, mode="zero", reference=PROBS, progress=False)
        with pytest.raises(ValueError, match="position 'latent_7' does not exist for this model"):
            P.ablate(llama, PROBS, positions=["latent_7"], progress=False)
        with pytest.raises(ValueError, match="clean questions are shorter than the corrupt ones .at most 9 vs 12"):
            P.patch(llama, [{"question": "3 + 4 = ?", "answer": "7"}],
                    [{"question": "3 + 4 + 1 = ?", "answer": "8"}], positions="question", progress=False)
        with pytest.raises(ValueError, match="readout=\\('input', 'latent_0'\\): must be \\(residual layer 0..2"):
            P.steer(llama, PROBS, torch.zeros(llama.d_model), readout=("input", "latent_0"), progress=False)
    finally:
        hook.remove()
    assert calls == []


def test_a_cell_some_problems_lack_averages_over_the_others_paired(llama):
    """A question token only the longest question has: the edit leaves the other problems alone (the engine), so
    their scores are NaN, answer_logp is the edited problem's own value, delta_logp its own change (paired, not
    a mean over all three problems), and a partial_cells finding names the cell."""
    from interventions_fixtures import qa as split

    from interp.interventions.batch import prepare
    from interp.interventions.engine import Edit, baseline, run_cells

    b = prepare(llama, *split(PROBS))
    base = baseline(llama, b, [], "question")
    ref = base.scores["answer_logp"].numpy()
    lacks = [i for i in range(len(base.plan.labels)) if base.plan.valid[:, i].sum() == 1]
    p = base.plan.labels[lacks[-1]]
    has = base.plan.valid[:, lacks[-1]].numpy()
    change = run_cells(llama, b, [[Edit(1, p)]], base.plan)["answer_logp"][0].numpy() - ref
    assert np.all(change[~has] == 0) and np.all(change[has] != 0)      # the engine edits only where p exists
    g = P.ablate(llama, PROBS, positions=[p], layers=[1], mode="zero", progress=False)
    np.testing.assert_allclose(g.scores[0, 0][has], change[has], atol=1e-5)
    assert np.all(np.isnan(g.scores[0, 0][~has]))
    assert g.metrics["delta_logp"][0, 0] == pytest.approx(float(change[has][0]), abs=1e-5)
    assert g.metrics["answer_logp"][0, 0] == pytest.approx(float((ref + change)[has][0]), abs=1e-5)
    found = [w for w in g.warnings if w.kind == "partial_cells"]
    assert len(found) == 1 and found[0].cells == [(1, p)] and "(1)" in found[0].message
    full = P.ablate(llama, PROBS, positions=["latent_0"], layers=[1], progress=False)
    assert not [w for w in full.warnings if w.kind == "partial_cells"]


def test_mean_over_a_reference_of_plain_questions(llama):
    """The reference's activations are all mean ablation reads: before the response, plain questions give exactly
    what the same questions with answers give; at a response position it needs answers, refused before any run."""
    from unittest import mock

    ref = [{"question": "5 + 1 = ?", "answer": "6"}, {"question": "8 - 3 = ?", "answer": "5"}]
    kw = dict(positions=["bot", "latent_1", "eot"], layers=["input", 1], mode="mean", progress=False)
    with_answers = P.ablate(llama, PROBS, reference=ref, **kw)
    plain = P.ablate(llama, PROBS, reference=[r["question"] for r in ref], **kw)
    for k in with_answers.metrics:
        np.testing.assert_array_equal(plain.metrics[k], with_answers.metrics[k])
    own = P.ablate(llama, PROBS, **kw)                                  # the reference does change the result
    assert not np.allclose(own.metrics["delta_logp"], with_answers.metrics["delta_logp"], equal_nan=True)
    with mock.patch("interp.interventions.study.baseline") as run:                # no forward call at all
        with pytest.raises(ValueError, match=r"reference=<problems without answers>: needs answers: the mean at "
                                             r"response positions \(\['resp_0'\]\)"):
            P.ablate(llama, PROBS, reference=["5 + 1 = ?"], positions=["latent_0", "resp_0"], layers=[1],
                     mode="mean", progress=False)
        run.assert_not_called()
