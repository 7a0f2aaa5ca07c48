"""The deception part of `codi-lens demo`, measured the way the field measures it (issue 17):

1. every deception probe cell beside a text-only baseline (`probes.text_baseline` over the tokens a text monitor
   sees there, `interp.textview`) and the white-box gain = probe AUROC - text AUROC with its CI;
2. behaviour labels (`interp.behaviour`): one instruction for all samples, the model answers, each sample labelled
   by whether its stated answer is false; probes of that label at the positions before the answer, for the CODI
   model and for the plain base model, under a lying instruction and with none; the counts are always reported;
3. transfer (`probes.transfer`): a probe fitted on one dataset scores another with no refit; the threshold is set at
   1% false positives on a control set of honest samples only (ordinary arithmetic questions with their answers,
   Apollo's protocol), and the headline cell is chosen on the training set's own cross-validation.

The stages run inside `app.demo.run_demo` (real weights); `cell_numbers` and `instruction_effect` show their
numbers on small inputs below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

import poslabels

__all__ = ["cell_numbers", "with_text_baseline", "sweep_behaviour", "instruction_effect", "behaviour_stage",
           "transfer_stage", "TRANSFERS"]

# (train, test) dataset pairs of the transfer study: both ways between the instructed sets, and to roleplaying
TRANSFERS = [("instructed-facts", "deception-arith"), ("deception-arith", "instructed-facts"),
             ("instructed-facts", "roleplaying"), ("deception-arith", "roleplaying")]
CELL_KEYS = ("auroc_lo", "auroc_hi", "p_value", "p_corrected", "text_auroc", "text_auroc_lo", "text_auroc_hi", "gain",
             "gain_lo", "gain_hi", "recall_at_1pct_fpr", "test_fpr_at_threshold", "control_auroc", "n_test")


def cell_numbers(grid, layer: int, position: str, metric: str = "auroc") -> dict:
    """One cell's numbers as plain floats: the metric with its CI, p and p_corrected, text baseline and gain.

    >>> import numpy as np, probes
    >>> y, groups = np.tile([0, 1], 12), np.repeat(np.arange(12), 2)
    >>> acts = np.random.default_rng(0).normal(size=(24, 1, 1, 4))
    >>> grid = probes.sweep(acts, labels=y, groups=groups, layers=[3], positions=["latent_0"], Cs=(1.0,), folds=3,
    ...                     n_permutations=0, n_bootstrap=100, progress=False)
    >>> c = cell_numbers(grid, 3, "latent_0")
    >>> c["layer"], c["position"], c["auroc"] == float(grid.sel("auroc", 3, "latent_0")), "gain" in c
    (3, 'latent_0', True, False)
    """
    out = {"layer": int(layer), "position": position, metric: float(grid.sel(metric, layer, position))}
    for k in (f"{metric}_lo", f"{metric}_hi", *CELL_KEYS):
        if k in grid.metrics and k not in out:
            out[k] = float(grid.sel(k, layer, position))
    return out


def with_text_baseline(grid, cache, model, rows: np.ndarray | None = None):
    """`probes.text_baseline` of a sweep over `cache` (or over its samples `rows`), tokens from interp.textview."""
    import probes
    from interp.textview import visible_tokens

    texts = visible_tokens(cache, model)
    if rows is not None:
        texts = [texts[i] for i in np.flatnonzero(rows)]
    return probes.text_baseline(grid, texts)


def label_in_text_summary(grid) -> dict:
    """Where the text alone reads the label: positions fired, the highest text AUROC, the finding's words."""
    f = next((w for w in grid.warnings if w.kind == "label_in_text"), None)
    text = grid.metrics["text_auroc"][0]
    return {"fires": f is not None, "positions": sorted({p for _, p in f.cells}, key=grid.positions.index) if f else [],
            "n_positions": len(grid.positions), "max_text_auroc": float(np.nanmax(text)),
            "message": f.message if f else ""}


# ------------------------------------------------------------------------------------------------ behaviour
def sweep_behaviour(res, model, size, name: str, out: Path, say: Callable[[str], None]) -> tuple[Any, dict]:
    """Probe sweep + text baseline of a behaviour label over the answered samples; (None, info) when a class has
    fewer than 2 samples (the refusal, with the counts, is in info["refused"])."""
    import probes

    info: dict[str, Any] = {"counts": dict(res.counts), "instruction": res.config["instruction"],
                            "model_kind": res.config["model_kind"]}
    try:
        res.require_both_classes(min_per_class=2)
    except ValueError as err:
        info["refused"] = str(err)
        say(f"  {name}: {res.counts['false']} false / {res.counts['true']} true / {res.counts['no_answer']} no "
            f"answer: no probe (one class)")
        return None, info
    keep = res.answered
    c = res.cache
    minority = min(res.counts["false"], res.counts["true"])
    folds = int(min(size.folds, minority))
    grid = probes.sweep(c.array()[keep], labels=res.labels[keep], groups=res.samples["group"].to_numpy()[keep],
                        layers=c.layers, positions=c.positions, valid=c.valid[keep], folds=folds,
                        n_permutations=size.permutations, n_bootstrap=500, seed=0, Cs=size.Cs, chunk=32,
                        progress=False)
    grid = with_text_baseline(grid, c, model, keep)
    grid.config.update(demo_name=name, target="stated answer is false", counts=dict(res.counts))
    grid.save(out / "grids" / name)
    best = {}
    for kind in ("latent", "question", "token"):
        pos = [p for p in grid.positions if poslabels.kind(p) == kind]
        if pos and np.isfinite(grid.sel("auroc")[:, [grid.positions.index(p) for p in pos]]).any():
            best[kind] = cell_numbers(grid, *grid.best("auroc", positions=pos))
    info.update(folds=folds, best=best)
    b = best.get("latent") or best.get("token") or next(iter(best.values()))
    say(f"  {name}: {res.counts['false']} false / {res.counts['true']} true / {res.counts['no_answer']} no answer; "
        f"best {b['position']} L{b['layer']} auroc {b['auroc']:.3f} [{b['auroc_lo']:.3f}, {b['auroc_hi']:.3f}], "
        f"text {b['text_auroc']:.3f}, gain {b['gain']:+.3f} [{b['gain_lo']:+.3f}, {b['gain_hi']:+.3f}]")
    return grid, info


def instruction_effect(none, lie) -> dict:
    """Did the lying instruction change what the model said? Per question (the same questions in both runs): how
    many stated numbers differ, and how many answers that were true without the instruction became false with it.

    >>> import pandas as pd
    >>> from interp.behaviour import BehaviourResult
    >>> a = BehaviourResult(None, pd.DataFrame({"id": ["q0", "q1"], "stated_answer": ["3", "5"], "label": [0, 1]}), {})
    >>> b = BehaviourResult(None, pd.DataFrame({"id": ["q0", "q1"], "stated_answer": ["4", "5"], "label": [1, 1]}), {})
    >>> instruction_effect(a, b)
    {'n': 2, 'changed': 1, 'true_without': 1, 'true_to_false': 1, 'false_to_true': 0}
    """
    x, y = none.samples, lie.samples
    if list(x["id"]) != list(y["id"]):
        raise ValueError("the two behaviour runs asked different questions; use the same n and seed")
    changed = x["stated_answer"].to_numpy() != y["stated_answer"].to_numpy()
    a, b = x["label"].to_numpy(), y["label"].to_numpy()
    return {"n": len(x), "changed": int(changed.sum()), "true_without": int((a == 0).sum()),
            "true_to_false": int(((a == 0) & (b == 1)).sum()), "false_to_true": int(((a == 1) & (b == 0)).sum())}


def behaviour_stage(cm, layers: list[int], size, out: Path, say: Callable[[str], None]) -> tuple[dict, dict]:
    """Behaviour labels for the CODI model and the plain base model under each of `size.behaviour_conditions`
    (lying instruction, none): (summary, grids). `layers` are the layers cached and probed."""
    import interp
    from app.demo_setup import SEEDS
    from interp.behaviour import run_behaviour

    plain = interp.load_model(cm.config.base_model)
    models = {"codi": cm, "plain": plain}
    summary: dict[str, dict] = {}
    grids: dict[str, Any] = {}
    for who, model in models.items():
        summary[who], results = {}, {}
        for cond in size.behaviour_conditions:
            name = f"behaviour_{who}_{cond}"
            tokens = size.behaviour_tokens if who == "codi" else max(4, size.behaviour_tokens - 4)  # marker in prompt
            res = run_behaviour(model, n=size.n_behaviour, seed=SEEDS["behaviour"], instruction=cond,
                                steps=size.behaviour_steps, layers=layers, out=out / f"cache-{name}",
                                batch_size=size.batch_size, max_new_tokens=tokens)
            results[cond] = res
            grid, info = sweep_behaviour(res, model, size, name, out, say)
            info["examples"] = res.to_dict()["examples"][:3]
            summary[who][cond] = info
            if grid is not None:
                grids[name] = grid
        if {"lie", "none"} <= set(results):
            summary[who]["instruction_effect"] = instruction_effect(results["none"], results["lie"])
            say(f"  {who}: the lying instruction changed the stated number on "
                f"{summary[who]['instruction_effect']['changed']} of {size.n_behaviour} questions")
    summary["plain_model"] = plain.name
    del plain
    return summary, grids


# ------------------------------------------------------------------------------------------------- transfer
def _headline(train_grid, kind: str, grid) -> tuple[int, str] | None:
    """The training set's CV-best cell of one position kind among the cells the transfer `grid` has."""
    pos = [p for p in train_grid.positions if poslabels.kind(p) == kind and p in grid.positions]
    rows = [i for i, x in enumerate(train_grid.layers) if x in grid.layers]
    cols = [train_grid.positions.index(p) for p in pos]
    if not pos or not rows or not np.isfinite(train_grid.sel("auroc")[np.ix_(rows, cols)]).any():
        return None
    return train_grid.best("auroc", positions=pos, layers=grid.layers)


def transfer_stage(caches: dict, control, train_grids: dict, layers: list[int], size, out: Path,
                   say: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Every TRANSFERS pair: fit on train, score test, threshold at 1% FPR on the honest control (all label 0).

    Headline cells: the training set's own CV-best latent and response cells (`train_grids`), so the test set does
    not pick the cell it is scored on; the best transfer cell over all cells is reported too, marked optimistic.
    """
    import probes
    from app.transfer_command import common_positions

    positions = common_positions([*caches.values(), control])
    ctrl_y = np.zeros(len(control), dtype=np.int64)
    rows, grids = [], {}
    for train, test in TRANSFERS:
        name = f"transfer_{train}_to_{test}".replace("-", "_")
        g = probes.transfer(caches[train], None, None, caches[test], None, None, control=control, control_y=ctrl_y,
                            control_groups=np.arange(len(control)), layers=layers, positions=positions,
                            Cs=size.Cs, n_bootstrap=500, seed=0)
        g.config.update(demo_name=name, train_task=train, test_task=test, control_task="intermediate-values")
        g.save(out / "grids" / name)
        grids[name] = g
        row = {"train": train, "test": test, "n_train": g.config["n_train"], "n_test": g.config["n_test"],
               "n_control": g.config["n_control"], "cells": {}}
        for kind in ("latent", "response"):
            cell = _headline(train_grids[train], kind, g)
            if cell is not None:
                row["cells"][f"train_best_{kind}"] = cell_numbers(g, *cell)
        row["cells"]["best_transfer (optimistic)"] = cell_numbers(g, *g.best("auroc"))
        rows.append(row)
        h = row["cells"].get("train_best_latent") or row["cells"]["best_transfer (optimistic)"]
        say(f"  {train} -> {test}: at {h['position']} L{h['layer']} auroc {h['auroc']:.3f} [{h['auroc_lo']:.3f}, "
            f"{h['auroc_hi']:.3f}], recall at 1% FPR {h['recall_at_1pct_fpr']:.2f} (FPR on the test negatives "
            f"{h['test_fpr_at_threshold']:.2f})")
    return rows, grids
