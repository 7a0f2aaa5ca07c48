"""Report pieces of the demo's deception part (app/deception_report.py) on small real inputs: a probe grid with a
text baseline swept over planted data (tests/app/conftest.py `grid_with_text`), a transfer grid fitted here, and the
cells `app.demo_deception.cell_numbers` reads from them. Every printed number is the grid's."""

from __future__ import annotations

import numpy as np
import pytest

import probes
from app.deception_report import (
    TRANSFER_NOTE,
    behaviour_table,
    deception_lines,
    deception_sections,
    fmt_cell,
    fmt_gain,
    fmt_p,
    text_baseline_table,
    transfer_table,
)
from app.demo_deception import cell_numbers, label_in_text_summary

POS = ["latent_0", "latent_1", "resp_0"]


@pytest.fixture(scope="module")
def transfer_grid():
    """Fit on one half of a planted set (label at latent_1, layer 1), score the other, threshold on a control."""
    rng = np.random.default_rng(0)
    y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    acts = rng.normal(size=(60, 2, 3, 6))
    acts[:, 1, 1] += 2.5 * (y - 0.5)[:, None]
    control = rng.normal(size=(20, 2, 3, 6))
    return probes.transfer(acts[:30], y[:30], g[:30], acts[30:], y[30:], g[30:], control=control,
                           control_y=np.zeros(20, int), layers=[0, 1], positions=POS, Cs=(1.0,), n_bootstrap=100)


def _transfer_row(grid) -> dict:
    """A row as app.demo_deception.transfer_stage makes it."""
    return {"train": "instructed-facts", "test": "deception-arith", "n_train": grid.config["n_train"],
            "n_test": grid.config["n_test"], "n_control": grid.config["n_control"],
            "cells": {"train_best_latent": cell_numbers(grid, 1, "latent_1"),
                      "best_transfer (optimistic)": cell_numbers(grid, *grid.best("auroc"))}}


def _behaviour(grid) -> dict:
    """summary["behaviour"] as app.demo_deception.behaviour_stage makes it: a probe for codi/lie, a refusal for
    plain/lie (one class), and the instruction's effect."""
    lie = {"counts": {"false": 30, "true": 30, "no_answer": 4, "n": 64}, "best": {"latent": cell_numbers(grid, 1,
                                                                                                        "latent_1")}}
    plain = {"counts": {"false": 0, "true": 12, "no_answer": 4, "n": 16}, "refused": "one class: 0 false, 12 true"}
    effect = {"n": 64, "changed": 40, "true_without": 50, "true_to_false": 30, "false_to_true": 2}
    return {"codi": {"lie": lie, "instruction_effect": effect}, "plain": {"lie": plain}, "plain_model": "tiny-llama"}


def test_cell_formats_name_every_number(grid_with_text):
    c = cell_numbers(grid_with_text, 1, "latent_1")
    assert fmt_p(c) == f"p = {c['p_value']:.2g} (uncorrected), p_FWER = {c['p_corrected']:.2g} (max-T)"
    assert fmt_p({"p_value": 0.5}) == "p = 0.5 (uncorrected)" and fmt_p({"p_value": float("nan")}) == ""
    assert fmt_gain(c) == (f"text-only auroc {c['text_auroc']:.3f} [{c['text_auroc_lo']:.3f}, "
                           f"{c['text_auroc_hi']:.3f}] -> white-box gain {c['gain']:+.3f} [{c['gain_lo']:+.3f}, "
                           f"{c['gain_hi']:+.3f}]")
    assert fmt_gain({"auroc": 0.7}) == ""
    assert fmt_cell(c) == (f"auroc {c['auroc']:.3f} [{c['auroc_lo']:.3f}, {c['auroc_hi']:.3f}] at layer 1, latent_1; "
                           f"{fmt_p(c)}; {fmt_gain(c)}")
    r2 = {"layer": 2, "position": "latent_0", "r2": 0.25, "p_value": 0.01}
    assert fmt_cell(r2, "r2") == "r2 0.250 at layer 2, latent_0"                 # p only for auroc cells


def test_text_baseline_table_has_one_row_per_position(grid_with_text):
    g = grid_with_text
    lines = text_baseline_table(g).splitlines()
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert list(rows) == POS
    for j, p in enumerate(POS):
        li = int(np.nanargmax(g.metrics["auroc"][:, j]))
        m = {k: g.metrics[k][li, j] for k in ("auroc", "text_auroc", "gain", "gain_lo", "gain_hi")}
        assert f"{m['text_auroc']:.3f}" in rows[p] and f"{m['auroc']:.3f}" in rows[p] and f"(L{g.layers[li]}" in rows[p]
        assert f"{m['gain']:+.3f} [{m['gain_lo']:+.3f}, {m['gain_hi']:+.3f}]" in rows[p]
        assert rows[p].endswith("FIRES") == (m["text_auroc"] >= 0.95)
    assert rows["resp_0"].endswith("FIRES") and "read the gain, not the AUROC" in lines[-1]


def test_behaviour_table_gives_counts_then_the_best_cell(grid_with_text):
    beh = _behaviour(grid_with_text)
    c = beh["codi"]["lie"]["best"]["latent"]
    lines = behaviour_table(beh).splitlines()
    assert lines[2] == (f"codi    lie          {' 30 false /  30 true /   4 none (n=64)':<40} latent_1 L1: auroc "
                        f"{c['auroc']:.3f} [{c['auroc_lo']:.3f}, {c['auroc_hi']:.3f}]; {fmt_p(c)}")
    assert lines[3] == " " * 61 + fmt_gain(c)
    assert lines[4].strip() == ("the lying instruction changed the stated number on 40 of 64 questions; of the 50 "
                                "answered truly without it, 30 became false with it (2 false -> true)")
    assert lines[5].startswith("plain   lie            0 false /  12 true /   4 none (n=16)") and \
        lines[5].endswith("no probe: one class (the counts are the finding)")
    assert "(plain model tiny-llama)" in lines[-1]


def test_transfer_table_prints_the_grids_cells(transfer_grid):
    row = _transfer_row(transfer_grid)
    lines = transfer_table([row]).splitlines()
    for line, (label, c) in zip(lines[2:4], row["cells"].items()):
        assert line.startswith(f"{'instructed-facts -> deception-arith':<38} {label + ':':<19} ")
        assert (f"{c['position']:<6} L{c['layer']:<2} {c['auroc']:>7.3f} [{c['auroc_lo']:.3f}, {c['auroc_hi']:.3f}] "
                f"{c['recall_at_1pct_fpr']:>12.2f} {c['test_fpr_at_threshold']:>9.2f}") in line
    assert lines[4].strip() == "n train 30, test 30, control 20 (honest only)" and lines[-1] == TRANSFER_NOTE


def test_sections_draw_the_grids(grid_with_text, transfer_grid):
    g = grid_with_text
    grids = {"deception": g, "behaviour_codi_lie": g, "transfer_instructed_facts_to_deception_arith": transfer_grid}
    summary = {"behaviour": _behaviour(g), "transfer": [_transfer_row(transfer_grid)]}
    sections = deception_sections(grids, summary)
    heads = [h for h, _ in sections]
    assert heads == ["deception-arith: white-box gain per cell (probe AUROC - text-only AUROC)",
                     "deception-arith: text-only baseline per cell", "deception-arith: text baseline and gain, table",
                     "Behaviour labels: do the thoughts predict a false answer before it is given?",
                     "behaviour_codi_lie: probe AUROC per cell (label: the stated answer is false)",
                     "Transfer between datasets: fit on one, score another, threshold from honest control data",
                     "transfer_instructed_facts_to_deception_arith: test AUROC per cell"]
    figs = dict(sections)
    for head, grid, metric in ((heads[0], g, "gain"), (heads[1], g, "text_auroc"), (heads[4], g, "auroc"),
                               (heads[6], transfer_grid, "auroc")):
        np.testing.assert_array_equal(np.asarray(figs[head].data[0].z, float), grid.metrics[metric])
    assert figs[heads[2]] == text_baseline_table(g) and figs[heads[5]] == transfer_table(summary["transfer"])
    assert deception_sections({}, {}) == []


def test_closing_lines_state_each_auroc_with_its_baseline(grid_with_text, transfer_grid):
    g = grid_with_text
    t = label_in_text_summary(g)
    s = {"deception": {"best_latent": cell_numbers(g, 1, "latent_1"), "best_response": cell_numbers(g, 1, "resp_0"),
                       "text_baseline": t},
         "behaviour": _behaviour(g), "transfer": [_transfer_row(transfer_grid)]}
    lines = deception_lines(s)
    assert lines[0] == f"deception: best latent {fmt_cell(s['deception']['best_latent'])}"
    assert lines[1] == f"deception: best response {fmt_cell(s['deception']['best_response'])}"
    assert lines[2] == ("deception: label_in_text fires at 1 of 3 positions (text-only AUROC up to "
                        f"{t['max_text_auroc']:.3f})")
    assert lines[3] == (f"behaviour codi/lie:  30 false /  30 true /   4 none (n=64); best "
                        f"{fmt_cell(s['behaviour']['codi']['lie']['best']['latent'])}")
    assert lines[4].startswith("behaviour codi: the lying instruction changed the stated number on 40 of 64")
    assert lines[5] == "behaviour plain/lie:   0 false /  12 true /   4 none (n=16); no probe (one class)"
    c = transfer_grid
    a = (float(c.sel("auroc", 1, "latent_1")), float(c.sel("auroc_lo", 1, "latent_1")),
         float(c.sel("auroc_hi", 1, "latent_1")))
    assert lines[6] == (f"transfer instructed-facts -> deception-arith at latent_1 L1: auroc {a[0]:.3f} [{a[1]:.3f}, "
                        f"{a[2]:.3f}], recall at 1% FPR {float(c.sel('recall_at_1pct_fpr', 1, 'latent_1')):.2f}, "
                        f"test FPR {float(c.sel('test_fpr_at_threshold', 1, 'latent_1')):.2f}")
    assert len(lines) == 7
