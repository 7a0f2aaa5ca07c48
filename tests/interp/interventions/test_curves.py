"""Necessity and early-exit curves (interp/interventions/curves.py), on the shipped organism pointer3 (3 thoughts
carry the 3 hops); `viz.curves` draws them. The `codi-lens patch --study necessity` CLI: tests/app/test_commands.py.

Measured on 200 held-out pointer3 problems (2026-12-02): necessity accuracy 0.000 / 0.005 / 0.005 / 0.945 with
0 / 1 / 2 / 3 thoughts; the LM head reads the answer after 2 thoughts (top-1 0.935: the hidden state that becomes
the third thought is the answer, as the latent distillation trained it), not before (0.000).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import codi.organisms as organisms
import viz
from interp import curves as C
from interp.hooks import record_residuals
from interp.interventions.batch import prepare, qa


@pytest.fixture(scope="module")
def organism():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cm, make = organisms.load("pointer3")
    yield cm.eval(), make
    torch.set_num_threads(before)


def test_necessity_curve_needs_every_thought(organism):
    cm, make = organism
    probs = make(200, seed=1)
    nec = C.necessity(cm, probs)
    acc = nec.values["accuracy"]
    assert nec.steps == [0, 1, 2, 3] and nec.per_problem["correct"].shape == (4, 200)
    assert acc[3] > 0.85 and acc[:3].max() < 0.2, acc        # the answer needs all three thoughts
    assert np.all(nec.values["accuracy_lo"] <= acc) and np.all(acc <= nec.values["accuracy_hi"])
    assert nec.values["answer_logp"][3] > nec.values["answer_logp"][:3].max()
    # j = num_latents is the ordinary run: its accuracy is the one generate() gives
    out = cm.generate([p.question for p in probs[:50]], max_new_tokens=4)
    gen = np.mean([a.strip() == p.answer.strip() for a, p in zip(out.answers, probs[:50])])
    assert abs(gen - nec.per_problem["correct"][3, :50].mean()) <= 0.04
    fig = viz.curves([nec], "accuracy")
    assert list(fig.data[0].y) == pytest.approx(list(acc))


def test_early_exit_lm_head_and_probe(organism):
    cm, make = organism
    train, test = make(300, seed=2), make(200, seed=3)
    ex = C.early_exit(cm, test)
    top1 = ex.values["answer_top1"]
    assert ex.steps == [0, 1, 2, 3]
    assert top1[2] > 0.8 and top1[0] < 0.1 and top1[1] < 0.1, top1
    # prob and rank read the answer token's own entry: rank 0 exactly where it is the top token, and a
    # probability above one half only there
    per = ex.per_problem
    assert np.array_equal(per["answer_rank"] == 0, per["answer_top1"] == 1)
    assert np.all(per["answer_top1"][per["answer_prob"] > 0.5] == 1)
    assert ex.values["answer_prob"][2] > 0.5 > ex.values["answer_prob"][0], ex.values["answer_prob"]
    assert np.median(per["answer_rank"][0]) > 0, per["answer_rank"][0]
    # a probe of the final answer fitted on the residual after 2 thoughts, read at every step
    layer = cm.n_layers
    b = prepare(cm, *qa(train, None))
    with record_residuals(cm.model, [layer]) as rec:
        cm.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask)
    x = rec.residuals[layer][2][:, -1].numpy()
    probe = LogisticRegression(max_iter=2000).fit(x, [p.answer for p in train])
    ex2 = C.early_exit(cm, test, probe=probe, probe_layer=layer)
    pa = ex2.values["probe_accuracy"]
    assert pa[2] > 0.8 and pa[0] < 0.4, pa

    # bad arguments are refused before any forward call, naming the argument
    calls = []
    hook = cm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        for kw, msg in [(dict(probe_layer=99), f"probe_layer=99: must be an integer in 0..{layer}"),
                        (dict(probe_layer=True), "probe_layer=True"),
                        (dict(probe_layer=layer, targets=["1"]), r"targets=\[1 items\]: must hold one target per")]:
            with pytest.raises(ValueError, match=msg):
                C.early_exit(cm, test, probe=probe, **kw)
        for steps, msg in [([-1], r"steps\[0\]=-1"), ([1.7], r"steps\[0\]=1.7"), (3, "steps=3: must be a list")]:
            with pytest.raises(ValueError, match=msg):
                C.necessity(cm, test, steps=steps)
    finally:
        hook.remove()
    assert calls == []
