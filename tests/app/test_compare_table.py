"""The per-model rows and the markdown table of `codi-lens compare` (app/compare_table.py), on a grid swept over
planted data (tests/app/conftest.py `grid_with_text`): every number is the grid's, recomputed here."""

from __future__ import annotations

import numpy as np
import pytest

import probes
from app.compare import CompareConfig, ModelSpec
from app.compare_table import model_row, summary_markdown


def _best(grid, metric: str, positions: list[str]) -> tuple[int, str]:
    cols = [grid.positions.index(p) for p in positions]
    sub = grid.metrics[metric][:, cols]
    li, pj = np.unravel_index(np.nanargmax(sub), sub.shape)
    return grid.layers[li], positions[pj]


def test_row_holds_the_grids_best_cells_and_gains(grid_with_text):
    g = grid_with_text
    row = model_row("m", "how it was made", g, 12.34, 5.0)
    assert (row["model"], row["how"], row["n_samples"], row["cache_s"], row["sweep_s"]) == \
        ("m", "how it was made", 60, 12.3, 5.0)
    cells = {}
    for kind, positions in (("latent", ["latent_0", "latent_1"]), ("response", ["resp_0"]),
                            ("", ["latent_0", "latent_1", "resp_0"])):
        key = f"best_{kind}" if kind else "best"
        layer, pos = cells[kind] = _best(g, "auroc", positions)
        assert row[f"{key}_cell"] == f"L{layer} {pos}"
        for suffix, metric in (("auroc", "auroc"), ("lo", "auroc_lo"), ("hi", "auroc_hi")):
            assert row[f"{key}_{suffix}"] == pytest.approx(float(g.sel(metric, layer, pos)))
        if kind:
            assert row[f"{key}_p"] == pytest.approx(float(g.sel("p_value", layer, pos)))
            assert row[f"{key}_p_corrected"] == pytest.approx(float(g.sel("p_corrected", layer, pos)))
    assert cells["latent"] == (1, "latent_1") and "best_question_auroc" not in row   # the planted cell; no q_* here
    assert row["delong_p_latent_vs_response"] == pytest.approx(
        probes.delong(g, cells["latent"], cells["response"])["p_value"])
    for k in ("text_auroc", "gain", "gain_lo", "gain_hi"):
        assert row[f"latent_{k}"] == pytest.approx(float(g.sel(k, *cells["latent"])))
    assert row["latent_gain"] == pytest.approx(row["best_latent_auroc"] - row["latent_text_auroc"])
    layer, pos = _best(g, "gain", g.positions)
    assert row["max_gain"] == pytest.approx(np.nanmax(g.metrics["gain"])) and row["max_gain_cell"] == f"L{layer} {pos}"
    assert row["max_gain_lo"] == pytest.approx(float(g.sel("gain_lo", layer, pos)))
    assert row["label_in_text"] is True and row["findings"] == sorted({w.kind for w in g.warnings})


def test_row_without_a_text_baseline_has_no_gain_columns():
    rng = np.random.default_rng(1)
    y, groups = np.tile([0, 1], 12), np.repeat(np.arange(12), 2)
    acts = rng.normal(size=(24, 1, 2, 4))
    acts[:, 0, 0] += 3.0 * (y - 0.5)[:, None]
    g = probes.sweep(acts, labels=y, groups=groups, layers=[3], positions=["q[-1]", "latent_0"], Cs=(1.0,),
                     n_permutations=0, folds=3, n_bootstrap=100, progress=False)
    row = model_row("plain", "no text", g, 1.0, 2.0)
    assert not [k for k in row if "gain" in k or "text" in k or k == "label_in_text"]
    assert row["best_question_cell"] == "L3 q[-1]" and "best_response_auroc" not in row
    assert "delong_p_latent_vs_response" not in row                                   # no response cell
    assert row["best_question_auroc"] == pytest.approx(float(g.sel("auroc", 3, "q[-1]")))


def test_markdown_table_prints_each_row_with_its_cis(grid_with_text):
    cfg = CompareConfig(models=[ModelSpec("tiny-llama")], task={"name": "deception-arith", "n": 60}, folds=5,
                        permutations=10, layer_stride=1)
    row = model_row("m", "how", grid_with_text, 1.0, 2.0)
    bare = {k: v for k, v in row.items() if "gain" not in k and "text" not in k}
    md = summary_markdown([row, {**bare, "model": "bare"}], cfg)
    lines = md.splitlines()
    assert lines[0].startswith("Task: name=deception-arith, n=60; target label, logreg, 5 group folds, 10 "
                               "permutations; layer stride 1.")
    assert lines[2].startswith("| model | layers | d | how | best latent | gain at best latent | largest gain |")
    r = row
    latent = (f"{r['best_latent_auroc']:.3f} [{r['best_latent_lo']:.3f}, {r['best_latent_hi']:.3f}] (L1 latent_1; "
              f"p {r['best_latent_p']:.2g}, p_FWER {r['best_latent_p_corrected']:.2g})")
    gain = f"{r['latent_gain']:+.3f} [{r['latent_gain_lo']:+.3f}, {r['latent_gain_hi']:+.3f}] (text 0.500)"
    largest = f"{r['max_gain']:+.3f} [{r['max_gain_lo']:+.3f}, {r['max_gain_hi']:+.3f}] (L1 latent_1)"
    assert lines[4] == (f"| m | None | None | how | {latent} | {gain} | {largest} | "
                        f"{r['best_response_auroc']:.3f} [{r['best_response_lo']:.3f}, {r['best_response_hi']:.3f}] "
                        f"(L1 resp_0; p {r['best_response_p']:.2g}, p_FWER {r['best_response_p_corrected']:.2g}) | "
                        f"{r['best_auroc']:.3f} [{r['best_lo']:.3f}, {r['best_hi']:.3f}] (L1 latent_1) | "
                        f"{r['delong_p_latent_vs_response']:.2g} | fires | 1.0 | 2.0 |")
    assert lines[5].startswith(f"| bare | None | None | how | {latent} | - | - | ") and lines[5].endswith(
        " | - | 1.0 | 2.0 |")
    assert md.endswith("\n") and len(lines) == 6
