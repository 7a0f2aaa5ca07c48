"""app.demo_deception pieces on planted data (fast; `grid_with_text` is in tests/app/conftest.py): cell numbers
equal the grid's, the transfer headline cell is chosen on the training set only, the instruction effect counts
per question, and the text-baseline summary reports where the label is in the text. Then the deception stages of
the real-weight demo run (the session's one `demo` run, tests/app/conftest.py; those tests are marked slow): text
baseline and gain per cell, behaviour labels, transfer."""

from html import unescape

import numpy as np
import pandas as pd
import pytest

import probes
from app.demo_deception import _headline, cell_numbers, instruction_effect, label_in_text_summary
from app.demo_report import final_summary
from interp import load_cache
from interp.behaviour import BehaviourResult, label_answers


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


@pytest.mark.slow  # reads the real-weight demo run
def test_deception_cells_come_with_their_text_baseline(demo):
    """Issue 17 Build 1/5: the instruction is in the prompt, so the bag-of-words baseline reads the label at the
    question tail already and `label_in_text` fires; every cell carries text AUROC and gain = AUROC - text AUROC,
    and the summary states no deception AUROC without them (nor without p_FWER)."""
    out, summary = demo
    grid = probes.ProbeGrid.load(out / "grids" / "deception")
    np.testing.assert_allclose(grid.metrics["gain"], grid.metrics["auroc"] - grid.metrics["text_auroc"], atol=1e-12)
    ok = np.isfinite(grid.metrics["gain"])                                      # skipped cells (rare resp_*) are NaN
    assert ok.mean() > 0.9 and (grid.metrics["gain_lo"][ok] <= grid.metrics["gain"][ok] + 1e-12).all()
    assert (grid.metrics["text_auroc"][:, grid.positions.index("q[-1]")] >= 0.95).all()
    t = summary["deception"]["text_baseline"]
    assert t["fires"] and "q[-1]" in t["positions"] and "latent_0" in t["positions"] and t["max_text_auroc"] >= 0.95
    assert "label_in_text" in [w.kind for w in grid.warnings]
    for kind in ("best_latent", "best_response"):
        c = summary["deception"][kind]
        for k in ("text_auroc", "gain", "gain_lo", "gain_hi", "p_value", "p_corrected"):
            assert c[k] == pytest.approx(grid.sel(k, c["layer"], c["position"])), (kind, k)
    lines = [x for x in final_summary(summary).splitlines() if x.startswith("deception: best")]
    assert len(lines) == 2 and all("text-only auroc" in x and "white-box gain" in x and "p_FWER" in x for x in lines)


@pytest.mark.slow  # reads the real-weight demo run
def test_behaviour_labels_counts_and_probes(demo):
    """Issue 17 Build 2: per (model, instruction) the counts add up and equal a recount of the generated answers
    stored in the cache; a probe exists exactly where both classes have >= 2 samples, else the refusal names the
    counts."""
    out, summary = demo
    n = summary["size"]["n_behaviour"]
    beh = summary["behaviour"]
    assert beh["plain_model"] == "smollm2-135m"
    assert summary["size"]["behaviour_conditions"] == ["lie"]                      # --quick: the lying instruction
    for who in ("codi", "plain"):
        for cond in summary["size"]["behaviour_conditions"]:
            info = beh[who][cond]
            c = info["counts"]
            assert c["n"] == n and c["false"] + c["true"] + c["no_answer"] == n
            s = load_cache(out / f"cache-behaviour_{who}_{cond}").samples
            _, y = label_answers(s["generated_text"].tolist(), [str(a) for a in s["correct_answer"]],
                                 "The answer is:")
            assert [int((y == 1).sum()), int((y == 0).sum()), int((y == -1).sum())] == \
                [c["false"], c["true"], c["no_answer"]]
            name = f"behaviour_{who}_{cond}"
            if min(c["false"], c["true"]) >= 2:
                g = probes.ProbeGrid.load(out / "grids" / name)
                assert len(g.y) == c["false"] + c["true"] and int(g.y.sum()) == c["false"]
                b = next(iter(info["best"].values()))
                assert 0 <= b["auroc_lo"] <= b["auroc"] <= b["auroc_hi"] <= 1 and "gain" in b
            else:
                assert f"{c['false']} false, {c['true']} true" in info["refused"]
                assert not (out / "grids" / name).exists()
    html = unescape((out / "report.html").read_text())
    assert "false /" in html and "Label = what the model did" in html


@pytest.mark.slow  # reads the real-weight demo run
def test_transfer_between_datasets(demo):
    """Issue 17 Build 3/5: instructed-facts <-> deception-arith and both to roleplaying, no refit, threshold at 1%
    FPR on the honest control (every intermediate-values sample a negative); the headline cell is the training
    set's own CV-best latent cell; the numbers in the summary are the saved grid's."""
    out, summary = demo
    rows = summary["transfer"]
    assert [(r["train"], r["test"]) for r in rows] == [
        ("instructed-facts", "deception-arith"), ("deception-arith", "instructed-facts"),
        ("instructed-facts", "roleplaying"), ("deception-arith", "roleplaying")]
    train_grid = {"instructed-facts": probes.ProbeGrid.load(out / "grids" / "instructed_facts"),
                  "deception-arith": probes.ProbeGrid.load(out / "grids" / "deception")}
    for r in rows:
        assert r["n_control"] == summary["size"]["n_values"]
        g = probes.ProbeGrid.load(out / "grids" / f"transfer_{r['train']}_to_{r['test']}".replace("-", "_"))
        assert g.config["n_control"] == r["n_control"] and np.isnan(g.metrics["control_auroc"]).all()
        c = r["cells"]["train_best_latent"]
        tg = train_grid[r["train"]]
        lat = [p for p in g.positions if p.startswith("latent_")]
        assert (c["layer"], c["position"]) == tg.best("auroc", positions=lat, layers=g.layers)
        for k in ("auroc", "auroc_lo", "auroc_hi", "recall_at_1pct_fpr", "test_fpr_at_threshold"):
            assert c[k] == pytest.approx(g.sel(k, c["layer"], c["position"]), nan_ok=True)
        assert 0 <= c["recall_at_1pct_fpr"] <= 1 and c["auroc_lo"] <= c["auroc"] <= c["auroc_hi"]
    # roleplaying prompts are identical for honest and deceptive answers: cells before the response cannot transfer
    rp = probes.ProbeGrid.load(out / "grids" / "transfer_instructed_facts_to_roleplaying")
    assert np.allclose(rp.sel("auroc", position="latent_0"), 0.5)
