"""The demo's opening stage (app/demo_organism.py): the shipped organism pointer3 through accuracy, probes, lens,
patching and the necessity / early-exit curves, on 100 held-out problems (about 15 s); every reported number is
recomputed from the library calls it comes from. Then the stage inside the real-weight demo run (the session's one
`demo` run, tests/app/conftest.py; marked slow)."""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pytest

import codi
from app.demo_organism import accuracy_text, organism_stage
from codi.organisms.train import accuracy_table
from interp import interventions


@pytest.fixture(scope="module")
def stage():
    said: list[str] = []
    summary, sections = organism_stage("pointer3", n=100, n_pairs=20, n_permutations=0, say=said.append)
    return summary, sections, said


def test_accuracy_text_lists_every_row_of_the_table():
    cm, _ = codi.organisms.load("pointer3")
    table = accuracy_table(cm, codi.organisms.task_of("pointer3"), n=20)
    wall = {"base_s": 382.6, "codi_s": 88.5}
    lines = accuracy_text("pointer3", table, wall).splitlines()
    assert lines[0] == ("pointer3: 20 held-out problems (never trained on), greedy decoding; chance 0.125. Trained "
                        "from scratch on a 2-core CPU: base 383 s, CODI stage 88 s.")
    keys = ["direct", "written", "codi", "codi_zero", "codi_mean", "codi_random", "codi_swap"]
    assert [float(line.split()[-1]) for line in lines[2:9]] == [round(table[k], 3) for k in keys]
    assert lines[4] == f"  {'CODI (continuous thoughts)':<42} {table['codi']:.3f}"
    assert lines[9:] == [f"  {f'CODI, only the first {j} thought(s)':<42} {a:.3f}"
                         for j, a in enumerate(table["first_j"])]


def test_stage_summary_is_recomputed_by_the_library_calls(stage):
    summary, _, said = stage
    cm, _ = codi.organisms.load("pointer3")
    task = codi.organisms.task_of("pointer3")
    assert summary["accuracy"] == accuracy_table(cm, task, n=100)
    meta = json.loads((codi.organisms.folder("pointer3") / "organism.json").read_text())
    assert summary["wall"] == meta["wall"] and summary["name"] == "pointer3"
    held = task.make(100, seed=11, split="test")
    nec, ex = interventions.necessity(cm, held, name="pointer3"), interventions.early_exit(cm, held, name="pointer3")
    assert summary["necessity"] == nec.to_dict() and summary["early_exit"] == ex.to_dict()
    a = summary["accuracy"]
    assert said[0] == (f"  pointer3: direct {a['direct']:.3f}, written {a['written']:.3f}, CODI {a['codi']:.3f}, "
                       f"thoughts zeroed {a['codi_zero']:.3f} (chance 0.125, n=100)")
    for s in (1, 2, 3):                                      # one line per hop, the summary's numbers
        b = summary["probe_best"][s]
        assert said[s] == (f"  value after hop {s}: best probe L{b['layer']}/{b['position']} accuracy "
                           f"{b['accuracy']:.3f}; patching -> counterfactual answer "
                           f"{summary['counterfactual'][s]:.3f}")
        assert b["lo"] <= b["accuracy"] <= b["hi"]
    assert len(summary["lens"]) == 3 and np.all(np.diag(np.asarray(summary["lens"])[:, :3]) >= 0.8)


def test_stage_sections_draw_what_the_summary_reports(stage):
    summary, sections, _ = stage
    heads = [h for h, _ in sections]
    assert heads == ["Organism pointer3: a model that thinks in its latents",
                     "Organism pointer3: probes, logit lens and patching",
                     *(f"Organism pointer3: probe accuracy for the value after hop {s}" for s in (1, 2, 3)),
                     "Organism pointer3: patching (clean activation into the corrupt run)",
                     "Organism pointer3: how many thoughts are needed (necessity curve)",
                     "Organism pointer3: when the answer can be read (early-exit curve)",
                     "Organism pointer3: necessity and early exit, table"]
    intro = sections[0][1]
    assert intro.startswith("Model organism pointer3: a 2-layer Llama trained from scratch on 3-hop pointer chasing")
    assert intro.endswith(accuracy_text("pointer3", summary["accuracy"], summary["wall"]))
    for s, (_, fig) in zip((1, 2, 3), sections[2:5]):          # the heatmap's best cell is the summary's
        assert float(np.nanmax(np.asarray(fig.data[0].z, float))) == pytest.approx(summary["probe_best"][s]["accuracy"])
    np.testing.assert_array_equal(sections[6][1].data[0].y, summary["necessity"]["values"]["accuracy"])


@pytest.mark.slow  # reads the real-weight demo run
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
