"""The demo's opening stage: a shipped model organism, whose thoughts are known to do the work, through every study.

It shows what codi-lens reports when a model thinks in its latents (a positive control), before the real-weight
study shows a model that may not. Accuracy (direct, written, CODI, ablated thoughts, first j thoughts) is measured
again from the shipped weights; then `app.organism_study.study` (multiclass probes of each step's value, the
logit lens of each thought, patching with counterfactual answers).

    >>> from app.demo_organism import organism_stage
    >>> summary, sections = organism_stage("pointer3", n=200, n_pairs=50)   # ~30 s on 2 cores  # doctest: +SKIP
    >>> summary["accuracy"]["codi"], summary["counterfactual"]                                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["organism_stage", "accuracy_text"]

ROWS = [("direct", "answer directly (no written steps)"), ("written", "written steps"),
        ("codi", "CODI (continuous thoughts)"), ("codi_zero", "CODI, all thoughts zeroed"),
        ("codi_mean", "CODI, thoughts replaced by their mean"),
        ("codi_random", "CODI, random thoughts of the same norm"), ("codi_swap", "CODI, another problem's thoughts")]


def accuracy_text(name: str, table: dict, wall: dict) -> str:
    """Plain-text accuracy table of an organism (the report's first section).

    >>> table = {"n": 500, "chance": 0.125, "direct": 0.16, "written": 1.0, "codi": 0.94, "codi_zero": 0.116,
    ...          "codi_mean": 0.1, "codi_random": 0.12, "codi_swap": 0.09, "first_j": [0.02, 0.01, 0.02, 0.94]}
    >>> print(accuracy_text("pointer3", table, {"base_s": 382.6, "codi_s": 88.5}))
    pointer3: 500 held-out problems (never trained on), greedy decoding; chance 0.125. Trained from scratch on a
    2-core CPU: base 383 s, CODI stage 88 s.
    <BLANKLINE>
      answer directly (no written steps)         0.160
      written steps                              1.000
      CODI (continuous thoughts)                 0.940
    ...
      CODI, only the first 3 thought(s)          0.940
    """
    lines = [f"{name}: {table['n']} held-out problems (never trained on), greedy decoding; chance "
             f"{table['chance']:.3f}. Trained from scratch on a 2-core CPU: base {wall['base_s']:.0f} s, CODI stage "
             f"{wall['codi_s']:.0f} s.", ""]
    lines += [f"  {what:<42} {table[key]:.3f}" for key, what in ROWS]
    lines += [f"  {'CODI, only the first ' + str(j) + ' thought(s)':<42} {a:.3f}"
              for j, a in enumerate(table["first_j"])]
    return "\n".join(lines)


def organism_stage(name: str = "pointer3", n: int = 500, n_pairs: int = 200, n_permutations: int = 20,
                   say=print) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Measure the organism `name`; returns (summary, report sections as (heading, text or figure))."""
    import json

    import codi
    import viz
    from app.organism_study import study
    from codi.organisms.train import accuracy_table

    cm, _ = codi.organisms.load(name)
    task = codi.organisms.task_of(name)
    meta = json.loads((codi.organisms.folder(name) / "organism.json").read_text())
    table = accuracy_table(cm, task, n=n)
    say(f"  {name}: direct {table['direct']:.3f}, written {table['written']:.3f}, CODI {table['codi']:.3f}, "
        f"thoughts zeroed {table['codi_zero']:.3f} (chance {table['chance']:.3f}, n={n})")
    res = study(cm, task, n=n, n_pairs=n_pairs, n_permutations=n_permutations, name=name)
    for s, g in res.probe.items():
        layer, pos = g.best("accuracy")
        say(f"  value after hop {s}: best probe L{layer}/{pos} accuracy {g.sel('accuracy', layer, pos):.3f}; "
            f"patching -> counterfactual answer {res.counterfactual[s]:.3f}")
    intro = (f"Model organism {name}: a {cm.n_layers}-layer Llama trained from scratch on {task.depth}-hop pointer "
             f"chasing, then CODI-trained so that its {cm.config.num_latents} continuous thoughts carry the "
             "intermediate nodes (codi.organisms). Its thoughts are known to do the work, so every tool below "
             "must find them: a positive control for the real-weight study that follows.")
    sections: list[tuple[str, Any]] = [
        (f"Organism {name}: a model that thinks in its latents", intro + "\n\n" + accuracy_text(name, table,
                                                                                                 meta["wall"])),
        (f"Organism {name}: probes, logit lens and patching", res.markdown()),
    ]
    for s, g in res.probe.items():
        sections.append((f"Organism {name}: probe accuracy for the value after hop {s}",
                         viz.heatmap(g, metric="accuracy", chance=float(g.sel("chance")[0, 0]),
                                     title=f"{name}: multiclass probe of the value after hop {s} (held-out accuracy)")))
    g1 = res.patch[1]
    sections.append((f"Organism {name}: patching (clean activation into the corrupt run)",
                     viz.heatmap(g1, metric="clean_accuracy", chance=0.0,
                                 title=f"{name}: share of pairs whose answer becomes the counterfactual one")))
    from app.demo_report import curve_sections
    from interp import interventions

    held = codi.organisms.task_of(name).make(n, seed=11, split="test")
    nec, ex = interventions.necessity(cm, held, name=name), interventions.early_exit(cm, held, name=name)
    say("  accuracy with only the first j thoughts: "
        + ", ".join(f"{j}: {a:.2f}" for j, a in zip(nec.steps, nec.values["accuracy"]))
        + "; LM head top-1 after j thoughts: "
        + ", ".join(f"{j}: {a:.2f}" for j, a in zip(ex.steps, ex.values["answer_top1"])))
    sections += curve_sections(nec, ex, f"Organism {name}")
    summary = {"name": name, "accuracy": table, "wall": meta["wall"], "study_seconds": res.wall_s,
               "probe_best": {s: dict(zip(("layer", "position"), g.best("accuracy")),
                                      accuracy=float(g.sel("accuracy", *g.best("accuracy"))),
                                      lo=float(g.sel("accuracy_lo", *g.best("accuracy"))),
                                      hi=float(g.sel("accuracy_hi", *g.best("accuracy"))))
                              for s, g in res.probe.items()},
               "lens": res.lens.tolist(), "counterfactual": res.counterfactual,
               "necessity": nec.to_dict(), "early_exit": ex.to_dict()}
    return summary, sections
