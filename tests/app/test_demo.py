"""`codi-lens demo --quick` end to end on smollm2-135m (real weights), and `codi-lens compare` on tiny models.

The demo runs once per session (module fixture, a few minutes on 2 busy cores); the tests read what it wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape

import numpy as np
import pytest

import probes
from app.compare import CompareConfig, run_compare
from app.demo import CACHE_POSITIONS, best_cells
from app.demo_report import final_summary
from interp import load_cache
from interp.behaviour import label_answers

pytestmark = pytest.mark.slow  # the demo runs the real-weight model (smollm2-135m + the shipped adapter)

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
def demo_run(tmp_path_factory):
    """`python -m app demo --quick` in a subprocess with every Python warning shown (PYTHONWARNINGS=default)."""
    out = tmp_path_factory.mktemp("demo")
    # one torch thread: on a shared CI runner, 2 OpenMP threads competing with other jobs spin for minutes
    env = {**os.environ, "PYTHONWARNINGS": "default", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-m", "app", "demo", "--quick", "--out", str(out), "--threads", "1"],
                         env=env, capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res.stdout, res.stderr


@pytest.fixture(scope="module")
def demo(demo_run):
    out = demo_run[0]
    return out, json.loads((out / "summary.json").read_text())


def test_demo_prints_no_python_warning(demo_run):
    """The main job's output is clean: no warning of numpy, scikit-learn, transformers or peft scrolls past (each
    is handled where it arises; issue 14 Build 4)."""
    _, stdout, stderr = demo_run
    shown = [line for line in (stdout + stderr).splitlines() if re.search(r"[A-Z]\w*Warning\b|warnings\.warn", line)]
    assert not shown, "\n".join(shown[:10])


def test_report_has_every_section(demo):
    out, summary = demo
    html = (out / "report.html").read_text()
    heads = [unescape(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    for s in SECTIONS:
        assert s in heads, (s, heads)
    assert html.count('data-figure="figure-') >= 8  # heatmaps + ROCs + ablation + lens figures
    assert summary["report"] == str(out / "report.html")


def test_accuracy_table_has_three_modes(demo):
    out, summary = demo
    acc = summary["accuracy"]
    assert sorted(acc) == ["codi", "cot", "no_cot"]
    for r in acc.values():
        assert r["n"] == 8 and 0 <= r["correct"] <= 8 and r["accuracy"] == r["correct"] / 8
    html = (out / "report.html").read_text()
    assert "no reasoning (answer directly)" in html and "written reasoning (chain of thought)" in html


def test_response_probe_on_deception_is_clearly_above_chance(demo):
    """Response tokens hold the honest vs lying answer text after the instruction: any CODI model (even
    untrained) must give a response-token probe whose CI lies well above 0.5."""
    out, summary = demo
    grid = probes.ProbeGrid.load(out / "grids" / "deception")
    best = best_cells(grid)["best_response"]
    assert best["auroc_lo"] > 0.6, best
    assert summary["deception"]["best_response"]["auroc"] == pytest.approx(best["auroc"])
    assert grid.config["n_permutations"] == 10 and np.isfinite(best["p_value"])
    # every kind of position was cached and probed: question tail, bot, all 6 thoughts, eot, response tokens
    for p in ["q[-1]", "bot", *(f"latent_{j}" for j in range(6)), "eot", "resp_0"]:
        assert p in grid.positions
    # layer 0 of the question tail is the token embedding: it cannot depend on the instruction before it, and
    # the checks must say so (identical features across labels within a question)
    # (an info finding when no deeper layer is identical)
    ident = [f for f in grid.warnings if f.kind == "identical_features"]
    assert ident and (0, "q[-1]") in [tuple(c) for c in ident[0].cells]
    assert ident[0].severity == ("error" if any(c[0] != 0 for c in ident[0].cells) else "info")


def test_intermediate_values_grids(demo):
    out, summary = demo
    for j in range(3):
        g = probes.ProbeGrid.load(out / "grids" / f"value_{j}")
        assert g.config["regression"] and "r2" in g.metrics
        r2 = g.metrics["r2"]
        assert np.isfinite(r2).any() and np.nanmax(r2) <= 1.0
        assert summary["values"][f"value_{j}"]["best"]["r2"] == pytest.approx(float(np.nanmax(r2)))
    g = probes.ProbeGrid.load(out / "grids" / "value_1_large")
    assert set(np.unique(g.y)) == {0, 1} and "auroc" in g.metrics


def test_ablation_grid_per_latent(demo):
    out, summary = demo
    g = probes.load_grid(out / "grids" / "ablate_zero")  # a neutral grids.ResultGrid
    assert type(g).__name__ == "ResultGrid"
    assert g.layers == [-1] and g.positions == [f"latent_{j}" for j in range(6)]
    base = g.config["baseline"]
    # delta = ablated - unablated, per thought
    np.testing.assert_allclose(
        g.metrics["delta_logp"], g.metrics["answer_logp"] - base["answer_logp"], atol=1e-9
    )
    assert summary["ablation"]["zero"]["delta_logp"]["latent_0"] == pytest.approx(
        g.metrics["delta_logp"][0, 0]
    )


def test_lens_table(demo):
    out, summary = demo
    lens = json.loads((out / "lens.json").read_text())
    cells = {(c["layer"], c["position"]) for c in lens["cells"]}
    assert {p for _, p in cells} == {f"latent_{j}" for j in range(6)}
    assert {layer for layer, _ in cells} == {0, 6, 12, 18, 24, 30}
    assert all(len(c["top"]) == 5 and 0 <= c["top"][0][1] <= 1 for c in lens["cells"])
    assert len(summary["lens"]["values"]) == 3


def test_compare_on_tiny_models(tmp_path):
    cfg = CompareConfig.from_dict(
        {
            "title": "tiny <script>",
            "out": str(tmp_path / "cmp"),
            "task": {"name": "deception-arith", "n": 24, "seed": 1},
            "study": {
                "layer_stride": 2,
                "permutations": 0,
                "folds": 3,
                "positions": ["q[-1]", "bot", "latent_0", "latent_5", "eot", "resp_0", "resp_3"],
            },
            "models": [{"model": "tiny-llama", "name": "llama"}, {"model": "tiny-gpt2", "name": "gpt2"}],
        }
    )
    res = run_compare(cfg, verbose=False)
    assert [r["model"] for r in res.rows] == ["llama", "gpt2"]
    for r in res.rows:
        g = res.grids[r["model"]]
        # the white-box gain per model: at the best latent cell, and the largest over all cells
        lat = [p for p in g.positions if p.startswith("latent_")]
        bl, bp = g.best("auroc", positions=lat)
        assert r["latent_gain"] == pytest.approx(g.sel("auroc", bl, bp) - g.sel("text_auroc", bl, bp))
        assert r["max_gain"] == pytest.approx(np.nanmax(g.metrics["gain"]))
        assert r["max_gain_lo"] <= r["max_gain"] <= r["max_gain_hi"]
        latent = [i for i, p in enumerate(g.positions) if p.startswith("latent_")]
        assert r["best_latent_auroc"] == pytest.approx(np.nanmax(g.metrics["auroc"][:, latent]))
        assert r["best_latent_lo"] <= r["best_latent_auroc"] <= r["best_latent_hi"]
        assert g.layers == [0, 2]
    html = res.report.read_text()
    assert "Across models" in html and "tiny &lt;script&gt;" in html
    md = (tmp_path / "cmp" / "summary.md").read_text()
    assert md.count("| llama |") == 1 and "gain at best latent" in md and "largest gain" in md


def test_compare_config_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        CompareConfig.from_dict(
            {"models": [{"model": "tiny-llama"}], "task": {"name": "deception-arith"}, "layerstride": 2}
        )
    with pytest.raises(ValueError, match="needs a list of models"):
        CompareConfig.from_dict({"task": {"name": "deception-arith"}})
    with pytest.raises(ValueError, match="codi = 'lora'"):
        CompareConfig.from_dict({"models": [{"model": "tiny-llama", "codi": "lora"}]})
    bad = tmp_path / "c.toml"
    bad.write_text("models = [\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        CompareConfig.load(bad)
    assert not (tmp_path / "runs").exists()
    assert CACHE_POSITIONS[-1] == "response"


def test_report_opens_with_the_organism_that_thinks_in_its_latents(demo):
    """The positive control comes first: pointer3's thoughts do the work, and the report says so in numbers."""
    out, summary = demo
    html = (out / "report.html").read_text()
    heads = [unescape(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    assert heads[0] == "Organism pointer3: a model that thinks in its latents", heads[:3]
    org = summary["organism"]
    a = org["accuracy"]
    assert a["n"] == 200 and a["codi"] >= 0.9 and a["codi_zero"] <= 2 * a["chance"] and a["direct"] <= 2 * a["chance"]
    assert org["probe_best"]["1"]["position"] == "latent_0" and org["probe_best"]["1"]["accuracy"] >= 0.9
    assert min(org["counterfactual"].values()) >= 0.8
    assert "where each step's value lives" in unescape(html)


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
