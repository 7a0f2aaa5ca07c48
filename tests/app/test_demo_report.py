"""Text and report pieces of `codi-lens demo` (app/demo_report.py) on real results of the shipped organism pointer3
(accuracy, ablation, necessity and early-exit curves, logit lens: fast, its thoughts do the work) and a probe grid
with a text baseline on planted data; then the report of the real-weight demo run (the session's one `demo` run,
tests/app/conftest.py; those tests are marked slow)."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest

import codi
import interp
import viz
from app.deception_report import deception_lines, fmt_cell
from app.demo_deception import cell_numbers
from app.demo_report import ablation_text, accuracy_text, curve_sections, final_summary, write_report
from codi.evaluate import evaluate
from interp import interventions
from interp.lens import logit_lens

SECTIONS = [
    "deception-arith (instruction before the question): honest vs lying",
    "intermediate values: step-1 value (ridge, R^2)",
    "intermediate values: step-2 value above the median (logistic)",
    "Logit lens of the continuous thoughts",
    "Accuracy: CODI vs no reasoning vs written reasoning",
    "Ablation of each continuous thought (answer log-probability change)",
    "Ablation table",
    "instructed-facts (honest vs dishonest persona before a true statement)",
    "roleplaying (a character with a reason to lie: honest vs deceptive answer)",
    "deception-arith: white-box gain per cell (probe AUROC - text-only AUROC)",
    "deception-arith: text-only baseline per cell",
    "deception-arith: text baseline and gain, table",
    "Behaviour labels: do the thoughts predict a false answer before it is given?",
    "Transfer between datasets: fit on one, score another, threshold from honest control data",
]


@pytest.fixture(scope="module")
def pointer3():
    """pointer3 on 8 held-out problems: its model, the problems, and the results the demo's stages produce."""
    cm, make = codi.organisms.load("pointer3")
    problems = make(8, seed=0)
    acc = evaluate(cm, problems, modes=("codi", "no_cot", "cot"), progress=False, cot_max_new_tokens=7)
    abl = {mode: interventions.ablate(cm, problems, positions="latents", layers=["input"], mode=mode, progress=False)
           for mode in ("zero", "mean")}
    curves = (interventions.necessity(cm, problems, name="pointer3"),
              interventions.early_exit(cm, problems, name="pointer3"))
    return cm, problems, acc, abl, curves


def test_accuracy_text_has_a_row_per_mode_and_the_first_examples(pointer3):
    _, problems, acc, _, _ = pointer3
    lines = accuracy_text(acc, "organism pointer3").splitlines()
    assert lines[:3] == ["model: organism pointer3", "", f"{'mode':<40} {'accuracy':>9} {'correct':>8} {'n':>4}"]
    for line, (mode, name) in zip(lines[3:6], (("codi", "CODI (continuous thoughts)"), ("no_cot", "no reasoning "
                                  "(answer directly)"), ("cot", "written reasoning (chain of thought)"))):
        r = acc[mode]
        assert r["n"] == 8 and r["accuracy"] == r["correct"] / 8
        assert line == f"{name:<40} {100 * r['accuracy']:>8.1f}% {r['correct']:>8} {r['n']:>4}"
    assert acc["codi"]["correct"] == 8                                 # the organism's thoughts do the work
    assert lines[7] == "CODI examples (question -> generated text | reference):"
    for line, ex, p in zip(lines[8:11], acc["codi"]["examples"], problems):
        assert ex["question"] == p.question and line == f"  {p.question!r} -> {ex['text']!r} | {p.answer}"
    assert lines[-2].startswith("CODI paper, GPT-2 on GSM8K: CODI 43.7")


def test_ablation_text_prints_each_thoughts_effect(pointer3):
    abl = pointer3[3]
    lines = ablation_text(abl).splitlines()
    assert lines[0].split() == ["mode", "thought", "accuracy", "d_acc", "answer", "logp", "d_logp"]
    rows = [line.split() for line in lines[1:9]]
    for mode, block in (("zero", rows[:4]), ("mean", rows[4:])):
        g, base = abl[mode], abl[mode].config["baseline"]
        assert block[0] == [mode, "(none)", f"{100 * base['answer_accuracy']:.1f}%", f"{base['answer_logp']:.3f}"]
        for row, p in zip(block[1:], ["latent_0", "latent_1", "latent_2"]):
            m = {k: float(g.sel(k, -1, p)) for k in ("answer_accuracy", "delta_accuracy", "answer_logp", "delta_logp")}
            assert row == [mode, p, f"{100 * m['answer_accuracy']:.1f}%", f"{100 * m['delta_accuracy']:+.1f}",
                           f"{m['answer_logp']:.3f}", f"{m['delta_logp']:+.3f}"]
            assert m["delta_logp"] == pytest.approx(m["answer_logp"] - base["answer_logp"])
    assert lines[-1].startswith("problems; answer scored by one teacher-forced pass")


def test_curve_sections_draw_and_tabulate_both_curves(pointer3):
    nec, ex = pointer3[4]
    (h1, f1), (h2, f2), (h3, text) = curve_sections(nec, ex, "pointer3")
    assert (h1, h2, h3) == ("pointer3: how many thoughts are needed (necessity curve)",
                            "pointer3: when the answer can be read (early-exit curve)",
                            "pointer3: necessity and early exit, table")
    np.testing.assert_array_equal(f1.data[0].y, nec.values["accuracy"])
    np.testing.assert_array_equal(f2.data[0].y, ex.values["answer_top1"])
    assert list(f1.data[0].x) == nec.steps == [0, 1, 2, 3]
    assert text.startswith("pointer3: n = 8 problems, 3 thoughts.")
    rows = [line.split() for line in text.splitlines()[3:]]
    for j, row in enumerate(rows):
        v = nec.values
        assert row == [str(j), f"{v['accuracy'][j]:.3f}", f"[{v['accuracy_lo'][j]:.3f},", f"{v['accuracy_hi'][j]:.3f}]",
                       f"{v['answer_logp'][j]:.3f}", f"{ex.values['answer_top1'][j]:.3f}"]
    assert len(rows) == 4 and nec.values["accuracy"][-1] == 1.0          # pointer3 needs all three thoughts


def test_write_report_holds_every_section(pointer3, grid_with_text, tmp_path):
    cm, problems, acc, abl, curves = pointer3
    c = interp.cache(cm, [problems[0].question], progress=False)
    lens = logit_lens(c, position=["latent_0", "latent_1", "latent_2"], k=5, model=cm, samples=[0])
    table = viz.LensTable.from_dict(lens.cells(sample=0), meta={"model": "pointer3"})
    path = write_report(tmp_path, {"deception": grid_with_text}, abl, acc, "organism pointer3", table,
                        problems[0].values, cm, {"n": 8}, {"eval": 0}, curves=curves)
    assert path == tmp_path / "report.html"
    html = unescape(path.read_text())
    heads = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
    base = cm.config.base_model
    assert heads == ["deception-arith (instruction before the question): honest vs lying",
                     "Logit lens of the continuous thoughts",
                     "deception-arith: white-box gain per cell (probe AUROC - text-only AUROC)",
                     "deception-arith: text-only baseline per cell", "deception-arith: text baseline and gain, table",
                     "Accuracy: CODI vs no reasoning vs written reasoning",
                     "Ablation of each continuous thought (answer log-probability change)", "Ablation table",
                     f"{base}: how many thoughts are needed (necessity curve)",
                     f"{base}: when the answer can be read (early-exit curve)",
                     f"{base}: necessity and early exit, table", "Logit lens with the step values marked",
                     "Run settings"]
    assert accuracy_text(acc, "organism pointer3") in html and ablation_text(abl) in html
    assert f"<title>codi-lens demo: {base} + CODI</title>" in html
    assert f"marked: step values {problems[0].values}" in html


def test_final_summary_closes_with_the_key_numbers(pointer3, grid_with_text):
    acc, abl = pointer3[2], pointer3[3]
    g = grid_with_text
    r2 = {"layer": 1, "position": "latent_1", "r2": 0.42, "r2_lo": 0.3, "r2_hi": 0.5}
    org = {"name": "pointer3", "counterfactual": {"1": 0.9, "2": 0.85},
           "accuracy": {"codi": 1.0, "codi_zero": 0.125, "direct": 0.375, "written": 1.0, "chance": 0.125, "n": 8}}
    s = {"seconds": 90.0, "model": "pointer3", "codi_model": "shipped", "organism": org,
         "accuracy": {m: {k: r[k] for k in ("accuracy", "correct", "n")} for m, r in acc.items()},
         "deception": {"best_latent": cell_numbers(g, 1, "latent_1")},
         "values": {"value_0": {"best": r2, "best_latent": r2}},
         "ablation": {"zero": {"delta_logp": {p: float(abl["zero"].sel("delta_logp", -1, p))
                                              for p in abl["zero"].positions}}},
         "report": "runs/demo/report.html"}
    lines = final_summary(s).splitlines()
    assert lines[:2] == ["", "codi-lens demo finished in 1.5 min (pointer3; shipped)"]
    assert lines[2] == ("organism pointer3: CODI 100.0%, thoughts zeroed 12.5%, direct 37.5%, written 100.0% (chance "
                        "12.5%, n=8); patching -> counterfactual answer hop 1 90%, hop 2 85%")
    assert lines[3] == "accuracy: " + ", ".join(f"{m} {100 * r['accuracy']:.1f}% ({r['correct']}/8)"
                                                for m, r in acc.items())
    assert lines[4:-3] == deception_lines(s) == [f"deception: best latent {fmt_cell(s['deception']['best_latent'])}"]
    assert lines[-3] == "value_0: best latent r2 0.420 [0.300, 0.500] at layer 1, latent_1; best overall r2 0.420 " \
                        "[0.300, 0.500] at layer 1, latent_1"
    z = s["ablation"]["zero"]["delta_logp"]
    assert lines[-2] == "ablation (zero, d answer logp): " + ", ".join(f"{p} {v:+.2f}" for p, v in z.items())
    assert lines[-1] == "report: runs/demo/report.html"


@pytest.mark.slow  # reads the real-weight demo run
def test_report_has_every_section(demo):
    out, summary = demo
    html = (out / "report.html").read_text()
    heads = [unescape(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    for s in SECTIONS:
        assert s in heads, (s, heads)
    assert html.count('data-figure="figure-') >= 8  # heatmaps + ROCs + ablation + lens figures
    assert summary["report"] == str(out / "report.html")


@pytest.mark.slow  # reads the real-weight demo run
def test_report_has_necessity_and_early_exit_curves_for_both_models(demo):
    """Issue 16: the organism needs all its thoughts (accuracy jumps only at j = k) and its answer is readable by
    the LM head before the last thought; smollm2's curves are reported beside it, whatever they show."""
    out, summary = demo
    html = unescape((out / "report.html").read_text())
    base = summary["base_model"]
    for who in ("Organism pointer3", base):
        assert f"{who}: how many thoughts are needed (necessity curve)" in html
        assert f"{who}: when the answer can be read (early-exit curve)" in html
    nec = summary["organism"]["necessity"]["values"]["accuracy"]
    assert nec[-1] >= 0.85 and max(nec[:-1]) <= 0.2, nec
    assert max(summary["organism"]["early_exit"]["values"]["answer_top1"]) >= 0.8
    k = summary["size"].get("num_latents") or len(summary["necessity"]["steps"]) - 1
    assert summary["necessity"]["steps"] == list(range(k + 1))
    assert len(summary["early_exit"]["values"]["answer_top1"]) == k + 1
