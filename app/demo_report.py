"""Text and report pieces of `codi-lens demo` (app/demo.py): the accuracy and ablation tables, the
report, the closing summary.

    >>> from app.demo_report import accuracy_text
    >>> print(accuracy_text({"codi": {"accuracy": 0.5, "correct": 1, "n": 2}}, "shipped checkpoint"))
    model: shipped checkpoint
    <BLANKLINE>
    mode                                      accuracy  correct    n
    CODI (continuous thoughts)                   50.0%        1    2
    ...
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from app.deception_report import fmt_cell  # noqa: F401 (re-exported: demo.py and older callers import it here)

__all__ = ["accuracy_text", "ablation_text", "write_report", "final_summary"]


def accuracy_text(acc: dict, how: str) -> str:
    """The accuracy table as plain text (monospace in the report)."""
    names = {
        "codi": "CODI (continuous thoughts)",
        "no_cot": "no reasoning (answer directly)",
        "cot": "written reasoning (chain of thought)",
    }
    lines = [f"model: {how}", "", f"{'mode':<40} {'accuracy':>9} {'correct':>8} {'n':>4}"]
    for mode, r in acc.items():
        lines.append(
            f"{names.get(mode, mode):<40} {100 * r['accuracy']:>8.1f}% {r['correct']:>8} {r['n']:>4}"
        )
    ex = acc.get("codi", {}).get("examples", [])[:3]
    if ex:
        lines += ["", "CODI examples (question -> generated text | reference):"]
        lines += [f"  {e['question'][:90]!r} -> {e['text'][:40]!r} | {e['answer']}" for e in ex]
    lines += [
        "",
        "CODI paper, GPT-2 on GSM8K: CODI 43.7, written reasoning 44.1, no reasoning 19.1. A model trained",
        "for a few steps here is far from that; train longer (codi-lens train) and pass --checkpoint.",
    ]
    return "\n".join(lines)


def ablation_text(grids: dict) -> str:
    lines = [f"{'mode':<6} {'thought':<10} {'accuracy':>9} {'d_acc':>7} {'answer logp':>12} {'d_logp':>8}"]
    for mode, g in grids.items():
        base = g.config.get("baseline", {})
        lines.append(
            f"{mode:<6} {'(none)':<10} {100 * base.get('answer_accuracy', math.nan):>8.1f}% {'':>7} "
            f"{base.get('answer_logp', math.nan):>12.3f}"
        )
        for p in g.positions:
            li = g.layers.index(-1) if -1 in g.layers else 0
            m = {
                k: float(g.metrics[k][li, g.positions.index(p)])
                for k in ("answer_accuracy", "delta_accuracy", "answer_logp", "delta_logp")
            }
            lines.append(
                f"{mode:<6} {p:<10} {100 * m['answer_accuracy']:>8.1f}% {100 * m['delta_accuracy']:>+6.1f} "
                f"{m['answer_logp']:>12.3f} {m['delta_logp']:>+8.3f}"
            )
    lines += [
        "",
        "Each thought replaced at the model input (the fed-back embedding) by zeros or by its mean over the",
        "problems; answer scored by one teacher-forced pass (accuracy = greedy answer equals the reference).",
    ]
    return "\n".join(lines)


def curve_sections(nec, ex, who: str) -> list[tuple[str, object]]:
    """Report sections of a necessity and an early-exit curve (`interp.interventions.curves`) of one model."""
    import viz

    k = nec.config["num_latents"]
    rows = [f"{'thoughts j':>10}  {'accuracy (first j run)':>24}  {'answer logp':>11}  {'LM head top-1 after j':>21}"]
    for j, (a, lo, hi, lp) in enumerate(zip(nec.values["accuracy"], nec.values["accuracy_lo"],
                                            nec.values["accuracy_hi"], nec.values["answer_logp"])):
        top = ex.values["answer_top1"][j] if j < len(ex.steps) else float("nan")
        rows.append(f"{j:>10}  {a:>8.3f} [{lo:.3f}, {hi:.3f}]  {lp:>11.3f}  {top:>21.3f}")
    text = (f"{who}: n = {nec.config['n']} problems, {k} thoughts. Necessity: only the first j thoughts run, then "
            "<eot> and the reference answer teacher forced (correct = greedy decoding reproduces it). Early exit: "
            "the LM head on the last-layer hidden state after j thoughts (j = 0: at <bot>), share of problems whose "
            "first answer token is its top token.\n\n" + "\n".join(rows))
    return [
        (f"{who}: how many thoughts are needed (necessity curve)",
         viz.curves([nec], "accuracy", title=f"{who}: accuracy with only the first j thoughts")),
        (f"{who}: when the answer can be read (early-exit curve)",
         viz.curves([ex], "answer_top1", title=f"{who}: LM head reads the answer after j thoughts (top-1)")),
        (f"{who}: necessity and early exit, table", text),
    ]


def write_report(
    out: Path,
    grids: dict,
    abl: dict,
    acc: dict,
    how: str,
    table,
    values: list[int],
    cm,
    size: dict,
    seeds: dict,
    lead: list | None = None,
    curves: tuple | None = None,
    summary: dict | None = None,
) -> Path:
    """`<out>/report.html`: the probe grids (viz.report sections), the deception part (text baseline and gain,
    behaviour labels, transfer), accuracy, ablation, lens, settings."""
    import viz
    from app.deception_report import deception_sections

    names = {
        "deception": "deception-arith (instruction before the question): honest vs lying",
        "deception_control": "control: deception-arith with the instruction only in the response",
        "instructed_facts": "instructed-facts (honest vs dishonest persona before a true statement)",
        "roleplaying": "roleplaying (a character with a reason to lie: honest vs deceptive answer)",
        "value_0": "intermediate values: step-1 value (ridge, R^2)",
        "value_1": "intermediate values: step-2 value (ridge, R^2)",
        "value_2": "intermediate values: final answer (ridge, R^2)",
        "value_1_large": "intermediate values: step-2 value above the median (logistic)",
    }
    keys = [k for k in names if k in grids]
    extra = [
        *deception_sections(grids, summary or {}),
        ("Accuracy: CODI vs no reasoning vs written reasoning", accuracy_text(acc, how)),
        (
            "Ablation of each continuous thought (answer log-probability change)",
            viz.heatmap(
                abl["zero"],
                metric="delta_logp",
                chance=0.0,
                title="zero-ablating each thought at the input: change of the answer's log-probability",
            ),
        ),
        ("Ablation table", ablation_text(abl)),
        *(curve_sections(*curves, cm.config.base_model) if curves else []),
        (
            "Logit lens with the step values marked",
            viz.lens(
                table,
                title=f"top-1 lens token per layer and thought; marked: step values {values}",
                mark=[str(v) for v in values],
            ),
        ),
        (
            "Run settings",
            json.dumps(
                {"codi_model": how, "codi_config": cm.config.to_dict(), "demo_size": size, "seeds": seeds},
                indent=1,
                default=str,
            ),
        ),
    ]
    return viz.report(
        [grids[k] for k in keys],
        out=out / "report.html",
        names=[names[k] for k in keys],
        lens=table,
        extra_sections=extra,
        lead_sections=lead,
        title=f"codi-lens demo: {cm.config.base_model} + CODI",
    )


def final_summary(s: dict) -> str:
    """The closing lines of `codi-lens demo`: key numbers and where the report is (a deception probe AUROC always
    with its text-only baseline and white-box gain)."""
    from app.deception_report import deception_lines

    acc = s.get("accuracy", {})
    org = s.get("organism")
    lines = [
        "",
        f"codi-lens demo finished in {s['seconds'] / 60:.1f} min ({s['model']}; {s['codi_model']})",
    ]
    if org:
        a = org["accuracy"]
        lines.append(f"organism {org['name']}: CODI {100 * a['codi']:.1f}%, thoughts zeroed "
                     f"{100 * a['codi_zero']:.1f}%, direct {100 * a['direct']:.1f}%, written "
                     f"{100 * a['written']:.1f}% (chance "
                     f"{100 * a['chance']:.1f}%, n={a['n']}); patching -> counterfactual answer "
                     + ", ".join(f"hop {k} {100 * v:.0f}%" for k, v in org["counterfactual"].items()))
    lines += [
        "accuracy: "
        + ", ".join(f"{m} {100 * r['accuracy']:.1f}% ({r['correct']}/{r['n']})" for m, r in acc.items()),
    ]
    lines += deception_lines(s)
    for k, v in s.get("values", {}).items():
        metric = "r2" if "r2" in v["best"] else "auroc"
        if "best_latent" in v:
            lines.append(
                f"{k}: best latent {fmt_cell(v['best_latent'], metric)}; best overall "
                f"{fmt_cell(v['best'], metric)}"
            )
    z = s.get("ablation", {}).get("zero")
    if z:
        lines.append(
            "ablation (zero, d answer logp): "
            + ", ".join(f"{p} {v:+.2f}" for p, v in z["delta_logp"].items())
        )
    lines.append(f"report: {s['report']}")
    return "\n".join(lines)
