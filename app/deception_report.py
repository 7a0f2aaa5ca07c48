"""Report pieces of the demo's deception part (app.demo_deception): the text-baseline table and heatmaps, the
behaviour-label table, the transfer table, and the closing lines that never state a probe AUROC without its
text-only baseline.

    >>> from app.deception_report import fmt_gain
    >>> fmt_gain({"text_auroc": 1.0, "text_auroc_lo": 1.0, "text_auroc_hi": 1.0, "gain": 0.0, "gain_lo": -0.1,
    ...           "gain_hi": 0.0})
    'text-only auroc 1.000 [1.000, 1.000] -> white-box gain +0.000 [-0.100, +0.000]'
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fmt_cell", "fmt_gain", "fmt_p", "text_baseline_table", "behaviour_table", "transfer_table",
           "deception_sections", "deception_lines"]

TRANSFER_NOTE = ("Fit on the train set (all of it; C by inner group CV), no refit; AUROC on the test set with a "
                 "group-bootstrap 95% CI (test sampling only, not the fit's variance). Threshold: 1% false positives "
                 "on the control set (honest samples only: intermediate-values questions with their correct "
                 "answers); recall = share of test positives above it; FPR = share of test negatives above it. "
                 "Cells: the training set's own CV-best latent / response cell (chosen without the test set), and "
                 "the best of all transfer cells (picked on the test set: optimistic).")


def fmt_p(c: dict) -> str:
    """'p = 0.09 (uncorrected), p_FWER = 0.4 (max-T)' when the cell has them, else ''.

    >>> fmt_p({"p_value": 0.0909, "p_corrected": 0.4}), fmt_p({"auroc": 0.9})
    ('p = 0.091 (uncorrected), p_FWER = 0.4 (max-T)', '')
    """
    if not math.isfinite(c.get("p_value", math.nan)):
        return ""
    text = f"p = {c['p_value']:.2g} (uncorrected)"
    if math.isfinite(c.get("p_corrected", math.nan)):
        text += f", p_FWER = {c['p_corrected']:.2g} (max-T)"
    return text


def fmt_gain(c: dict) -> str:
    """'text-only auroc T [lo, hi] -> white-box gain G [lo, hi]' when the cell has a text baseline, else ''
    (example: the module docstring)."""
    if "text_auroc" not in c:
        return ""
    return (f"text-only auroc {c['text_auroc']:.3f} [{c['text_auroc_lo']:.3f}, {c['text_auroc_hi']:.3f}] -> "
            f"white-box gain {c['gain']:+.3f} [{c['gain_lo']:+.3f}, {c['gain_hi']:+.3f}]")


def fmt_cell(c: dict, metric: str = "auroc") -> str:
    """'auroc 0.9 [0.8, 1.0] at layer 6, latent_1; p = .. (uncorrected), p_FWER = .. (max-T); text-only auroc ..
    -> white-box gain ..' (the p-values and the text baseline when the cell has them).

    >>> fmt_cell({"layer": 6, "position": "latent_1", "auroc": 0.9, "auroc_lo": 0.8, "auroc_hi": 1.0})
    'auroc 0.900 [0.800, 1.000] at layer 6, latent_1'
    """
    ci = f" [{c[metric + '_lo']:.3f}, {c[metric + '_hi']:.3f}]" if metric + "_lo" in c else ""
    extra = [x for x in (fmt_p(c) if metric == "auroc" else "", fmt_gain(c)) if x]
    return f"{metric} {c[metric]:.3f}{ci} at layer {c['layer']}, {c['position']}" + "".join(f"; {x}" for x in extra)


def text_baseline_table(grid) -> str:
    """Per position: the text-only AUROC (the same at every layer), the best probe cell there, and its gain."""
    lines = [f"{'position':<10} {'text-only AUROC':>23}  {'best probe AUROC (layer)':>30}  {'white-box gain':>24}  "
             "label in text", ""]
    for j, p in enumerate(grid.positions):
        col = grid.metrics["auroc"][:, j]
        if not np.isfinite(col).any():
            continue
        li = int(np.nanargmax(col))
        m = {k: float(grid.metrics[k][li, j]) for k in ("auroc", "auroc_lo", "auroc_hi", "text_auroc", "text_auroc_lo",
                                                        "text_auroc_hi", "gain", "gain_lo", "gain_hi")}
        fired = m["text_auroc"] >= grid.config.get("text_baseline", {}).get("threshold", 0.95)
        lines.append(f"{p:<10} {m['text_auroc']:>7.3f} [{m['text_auroc_lo']:.3f}, {m['text_auroc_hi']:.3f}]  "
                     f"{m['auroc']:>7.3f} [{m['auroc_lo']:.3f}, {m['auroc_hi']:.3f}] (L{grid.layers[li]:<2})  "
                     f"{m['gain']:>+7.3f} [{m['gain_lo']:+.3f}, {m['gain_hi']:+.3f}]  {'FIRES' if fired else ''}")
    lines += ["", "Text-only baseline: a bag-of-words logistic probe on the tokens visible at the position (prompt up "
              "to it; for response positions also the response so far), with the probe's labels, groups, folds and "
              "permutations. Gain = probe AUROC - text AUROC; CI from the paired group bootstrap. Where the text alone "
              "reaches 0.95 (`label_in_text`), a probe may only read the instruction: read the gain, not the AUROC."]
    return "\n".join(lines)


def _counts(c: dict) -> str:
    return f"{c['false']:>3} false / {c['true']:>3} true / {c['no_answer']:>3} none (n={c['n']})"


def _conditions(beh: dict, who: str) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in beh.get(who, {}).items() if k != "instruction_effect"]


def _effect(e: dict) -> str:
    return (f"the lying instruction changed the stated number on {e['changed']} of {e['n']} questions; of the "
            f"{e['true_without']} answered truly without it, {e['true_to_false']} became false with it "
            f"({e['false_to_true']} false -> true)")


def behaviour_table(beh: dict) -> str:
    """One row per (model, instruction): counts, then the best cell with CI, p, text baseline and gain."""
    lines = [f"{'model':<7} {'instruction':<12} {'answers':<40} best cell before the answer", ""]
    for who in ("codi", "plain"):
        for cond, info in _conditions(beh, who):
            head = f"{who:<7} {cond:<12} {_counts(info['counts']):<40}"
            if "refused" in info:
                lines.append(head + " no probe: one class (the counts are the finding)")
                continue
            b = info["best"].get("latent") or info["best"].get("token") or next(iter(info["best"].values()))
            lines.append(head + f" {b['position']} L{b['layer']}: auroc {b['auroc']:.3f} [{b['auroc_lo']:.3f}, "
                         f"{b['auroc_hi']:.3f}]; {fmt_p(b)}")
            lines.append(" " * 61 + fmt_gain(b))
        if "instruction_effect" in beh.get(who, {}):
            lines.append(" " * 21 + _effect(beh[who]["instruction_effect"]))
    lines += ["", "Label = what the model did: the number it states is false (1) or true (0); samples without a "
              "number are left out. Every prompt carries the same instruction ('lie': 'Answer the following "
              "question with a wrong answer...'; 'none': the bare question), so no label word is in the text. "
              "Positions before the answer: question tail, <bot>, the thoughts, <eot> (CODI); the last 8 prompt "
              f"tokens, ending with the answer marker (plain model {beh.get('plain_model', '')}). Best cell = best "
              "of many cells on the same data (optimistic: read p_FWER); with few samples of one class the CIs are "
              "wide and the folds few (folds = the smaller count, at most the demo's)."]
    return "\n".join(lines)


def transfer_table(rows: list[dict]) -> str:
    """One line per (train -> test, headline cell): AUROC with CI, recall at the 1%-FPR threshold, test FPR; then the
    sizes and TRANSFER_NOTE. `rows`: as `app.demo_deception.transfer_stage` makes them."""
    lines = [f"{'train -> test':<38} {'cell':<29} {'AUROC [95% CI]':>24} {'recall@1%FPR':>12} {'test FPR':>9}", ""]
    for r in rows:
        for label, c in r["cells"].items():
            lines.append(f"{r['train'] + ' -> ' + r['test']:<38} {label + ':':<19} {c['position']:<6} L{c['layer']:<2} "
                         f"{c['auroc']:>7.3f} [{c['auroc_lo']:.3f}, {c['auroc_hi']:.3f}] "
                         f"{c['recall_at_1pct_fpr']:>12.2f} {c['test_fpr_at_threshold']:>9.2f}")
        lines.append(f"{'':<38} n train {r['n_train']}, test {r['n_test']}, control {r['n_control']} (honest only)")
    return "\n".join(lines + ["", TRANSFER_NOTE])


def deception_sections(grids: dict, summary: dict) -> list[tuple[str, object]]:
    """Report sections: gain and text-AUROC heatmaps + table of deception-arith, behaviour, transfer."""
    import viz

    out: list[tuple[str, object]] = []
    g = grids.get("deception")
    if g is not None and "gain" in g.metrics:
        out += [("deception-arith: white-box gain per cell (probe AUROC - text-only AUROC)",
                 viz.heatmap(g, metric="gain", chance=0.0, title="deception-arith (instruction before the question): "
                             "white-box gain over the text-only baseline")),
                ("deception-arith: text-only baseline per cell",
                 viz.heatmap(g, metric="text_auroc", chance=0.5, title="deception-arith: AUROC of a bag-of-words "
                             "probe on the visible tokens (the instruction is in the prompt)")),
                ("deception-arith: text baseline and gain, table", text_baseline_table(g))]
    if "behaviour" in summary:
        out.append(("Behaviour labels: do the thoughts predict a false answer before it is given?",
                    behaviour_table(summary["behaviour"])))
        for name in ("behaviour_codi_lie", "behaviour_codi_none"):
            if name in grids:
                out.append((f"{name}: probe AUROC per cell (label: the stated answer is false)",
                            viz.heatmap(grids[name], metric="auroc", title=f"{name}: probe of the behaviour label")))
    if "transfer" in summary:
        out.append(("Transfer between datasets: fit on one, score another, threshold from honest control data",
                    transfer_table(summary["transfer"])))
        for name in ("transfer_instructed_facts_to_deception_arith", "transfer_deception_arith_to_instructed_facts"):
            if name in grids:
                out.append((f"{name}: test AUROC per cell", viz.heatmap(grids[name], metric="auroc",
                                                                        title=f"{name} (no refit)")))
    return out


def deception_lines(s: dict) -> list[str]:
    """Closing lines: deception cells with their text baseline, label_in_text, behaviour counts, transfer."""
    lines = []
    for k in ("deception", "deception_control", "instructed_facts", "roleplaying"):
        if k not in s:
            continue
        for kind in ("best_latent", "best_response"):
            if kind in s[k]:
                lines.append(f"{k}: {kind.replace('_', ' ')} {fmt_cell(s[k][kind])}")
        t = s[k].get("text_baseline")
        if t:
            where = f"fires at {len(t['positions'])} of {t['n_positions']} positions" if t["fires"] else \
                "does not fire"
            lines.append(f"{k}: label_in_text {where} (text-only AUROC up to {t['max_text_auroc']:.3f})")
    beh = s.get("behaviour", {})
    for who in ("codi", "plain"):
        for cond, info in _conditions(beh, who):
            head = f"behaviour {who}/{cond}: {_counts(info['counts'])}"
            if "refused" in info:
                lines.append(head + "; no probe (one class)")
                continue
            b = info["best"].get("latent") or info["best"].get("token") or next(iter(info["best"].values()))
            lines.append(f"{head}; best {fmt_cell(b)}")
        if "instruction_effect" in beh.get(who, {}):
            lines.append(f"behaviour {who}: {_effect(beh[who]['instruction_effect'])}")
    for r in s.get("transfer", []):
        c = r["cells"].get("train_best_latent") or r["cells"]["best_transfer (optimistic)"]
        lines.append(f"transfer {r['train']} -> {r['test']} at {c['position']} L{c['layer']}: auroc {c['auroc']:.3f} "
                     f"[{c['auroc_lo']:.3f}, {c['auroc_hi']:.3f}], recall at 1% FPR {c['recall_at_1pct_fpr']:.2f}, "
                     f"test FPR {c['test_fpr_at_threshold']:.2f}")
    return lines
