"""Necessity and early-exit curves (interp/interventions/curves.py), on the shipped organism pointer3 (3 thoughts
carry the 3 hops) and the CLI; `viz.curves` draws them.

Measured on 200 held-out pointer3 problems (2026-12-02): necessity accuracy 0.000 / 0.005 / 0.005 / 0.945 with
0 / 1 / 2 / 3 thoughts; the LM head reads the answer after 2 thoughts (top-1 0.935: the hidden state that becomes
the third thought is the answer, as the latent distillation trained it), not before (0.000).
"""

from __future__ import annotations

import json

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
    assert np.all((ex.values["answer_prob"] >= 0) & (ex.values["answer_prob"] <= 1))
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
    with pytest.raises(ValueError, match="probe_layer=99"):
        C.early_exit(cm, test, probe=probe, probe_layer=99)
    with pytest.raises(ValueError, match="steps=\\[-1\\]"):
        C.necessity(cm, test, steps=[-1])


def test_cli_attribute_and_curves(tmp_path, capsys):
    from app.cli import main
    from codi.config import CODIConfig
    from codi.model import CODIModel
    from grids import ResultGrid

    torch.manual_seed(0)
    CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4)).save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "6", "--arith-steps", "2"]
    assert main(["patch", "--study", "attribute", *common, "--positions", "latents", "--verify-top", "3",
                 "--verify-sample", "4", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["kind"] == "attribution" and len(g.config["verification"]["top"]) == 3
    assert "AtP: 3 top cells and 4 random cells" in capsys.readouterr().out
    for study in ("necessity", "early-exit"):
        assert main(["patch", "--study", study, *common, "--out", str(tmp_path / study)]) == 0
        c = json.loads((tmp_path / study / "curve.json").read_text())
        assert c["steps"] == [0, 1, 2]
    assert main(["patch", "--study", "attribute", *common, "--verify-top", "-2", "--out", str(tmp_path / "b")]) == 2
    assert "--verify-top -2" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_cli_on_a_shipped_organism(tmp_path, capsys):
    from app.cli import main
    from grids import ResultGrid

    assert main(["patch", "--study", "attribute", "--organism", "pointer3", "--n", "8", "--hop", "2",
                 "--verify-top", "5", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["n"] == 8 and len(g.config["verification"]["top"]) == 5
    assert main(["patch", "--study", "necessity", "--organism", "pointer3", "--n", "50",
                 "--out", str(tmp_path / "n")]) == 0
    acc = json.loads((tmp_path / "n" / "curve.json").read_text())["values"]["accuracy"]
    assert acc[-1] > 0.8 and max(acc[:-1]) < 0.2, acc
    assert main(["patch", "--organism", "pointer9", "--out", str(tmp_path / "x")]) == 2
    assert "--organism 'pointer9': not shipped" in capsys.readouterr().err
    assert main(["patch", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
