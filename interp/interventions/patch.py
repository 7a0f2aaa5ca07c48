"""Activation patching: write the clean run's activation into the corrupt run at one cell, for every cell.

    >>> import codi
    >>> from interp.interventions import patch
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> clean, corrupt = [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}]
    >>> g = patch(cm, clean, corrupt, layers=["input", 1], positions="latents", progress=False)
    >>> sorted(g.metrics)
    ['clean_accuracy', 'clean_logp', 'delta_clean_logp', 'delta_logit_diff', 'logit_diff', 'recovered']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

import poslabels
from grids import Finding, ResultGrid
from interp.interventions.batch import Batch, check_codi, prepare, qa
from interp.interventions.engine import INPUT, Baseline, Edit, baseline, batch_labels
from interp.interventions.study import CellStudy, nanmean, parse_layers

__all__ = ["patch", "pair_batches", "patch_edits", "open_pairs"]


def pair_batches(model, clean: Any, corrupt: Any,
                 answers: tuple[Sequence[str], Sequence[str]] | None = None) -> tuple[Batch, Batch]:
    """The two batches of a patching experiment: clean questions and corrupt questions, BOTH scored against the
    clean answer with the corrupt answer as the foil (so `logit_diff` = clean answer minus corrupt answer).

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> clean, corrupt = [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}]
    >>> bc, bk = pair_batches(cm, clean, corrupt)
    >>> bc.answers == bk.answers == ["7"]
    True
    """
    cq, ca = qa(clean, answers[0] if answers else None)
    kq, ka = qa(corrupt, answers[1] if answers else None)
    if len(cq) != len(kq):
        raise ValueError(f"{len(cq)} clean vs {len(kq)} corrupt problems: patching needs aligned pairs.")
    return prepare(model, cq, ca, foils=ka), prepare(model, kq, ca, foils=ka)


def patch_edits(cells: Sequence[tuple[int, str]], labels: Sequence[str], clean: Baseline) -> list[list[Edit]]:
    """One edit group per cell: write the clean run's value (fed-back thought or residual) at that cell.

    >>> import codi
    >>> from interp.interventions.engine import baseline
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> base = baseline(cm, prepare(cm, ["3 + 4 = ?"], ["7"]), [1], "latents")
    >>> [(g[0].layer, g[0].label) for g in patch_edits([(-1, "latent_1"), (1, "latent_0")], ["latent_0",
    ...  "latent_1"], base)]
    [(-1, 'latent_1'), (1, 'latent_0')]
    """
    groups = []
    for layer, p in cells:
        if layer == INPUT:
            groups.append([Edit(INPUT, p, clean.latent_inputs[:, poslabels.latent_index(p)])])
        else:
            i = list(labels).index(p)
            groups.append([Edit(layer, p, clean.resid[layer][:, i], valid=clean.plan.valid[:, i])])
    return groups


def open_pairs(model, kind: str, clean: Any, corrupt: Any, layers: Any, positions: str | Sequence[str],
               answers: tuple[Sequence[str], Sequence[str]] | None = None) -> tuple[CellStudy, Baseline]:
    """The study of a patching experiment (on the corrupt batch) and the clean baseline with the residuals of
    every residual layer at the study's positions.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> st, base_c = open_pairs(cm, "patching", [{"question": "3 + 4 = ?", "answer": "7"}],
    ...                         [{"question": "3 + 5 = ?", "answer": "8"}], [1], "latents")
    >>> st.cells, sorted(base_c.resid)
    ([(1, 'latent_0'), (1, 'latent_1')], [1])
    """
    check_codi(model)
    bc, bk = pair_batches(model, clean, corrupt, answers)
    lays = parse_layers(model, layers)
    labels = batch_labels(model, bk, positions)
    try:
        batch_labels(model, bc, labels)
    except ValueError as e:
        n = [int(x.prompt_mask.long().sum(1).max()) for x in (bc, bk)]
        raise ValueError(f"{e} The clean questions are shorter than the corrupt ones (at most {n[0]} vs {n[1]} "
                         "tokens), so the clean run lacks positions the corrupt run has. Fix: make pairs whose "
                         "questions have the same token count (changed_number_pairs(..., tokenizer=model.tokenizer)), "
                         "or patch positions both have (e.g. positions='latents').") from None
    st = CellStudy.open(model, kind, bk, lays, positions)
    base_c = baseline(model, bc, [x for x in lays if x != INPUT], st.columns)
    return st, base_c


def _findings(bk: Batch, ld_c: float, ld_k: float) -> list[Finding]:
    n_ok = int(bk.foil_valid.sum())
    warns = []
    if n_ok < len(bk):
        warns.append(Finding("equal_answers", f"{len(bk) - n_ok} of {len(bk)} pairs have the same clean and corrupt "
                             "answer and are left out of logit_diff/recovered.", "info"))
    if abs(ld_c - ld_k) < 1e-3:
        warns.append(Finding("no_effect", f"clean and corrupt runs have the same logit difference ({ld_c:.4g} vs "
                             f"{ld_k:.4g}): 'recovered' is undefined; the corruption does not change the answer.",
                             "warning"))
    return warns


@torch.no_grad()
def patch(model, clean: Any, corrupt: Any, layers: Any = "all", positions: str | Sequence[str] = "all",
          answers: tuple[Sequence[str], Sequence[str]] | None = None, cells_per_pass: int | None = None,
          max_rows: int = 256, share_prompt: bool = True, progress: bool = True) -> ResultGrid:
    """Activation patching: run each `corrupt` problem with the `clean` problem's activation written at one
    cell, for every (layer, position) cell, batched (the corrupt batch is replicated, one replica per cell).

    Pairs are aligned by position label (a changed number with the same token count keeps every label). Both
    runs are teacher forced on the CLEAN response. Metrics per cell: logit_diff (logit of the clean answer
    token minus the corrupt one, at the first response token where they differ), recovered = (ld - ld_corrupt)
    / (ld_clean - ld_corrupt) (1 = the clean answer fully restored, 0 = no effect; its numerator paired over the
    pairs the cell exists for, see `partial_cells` findings), clean_accuracy (greedy
    answer is the clean answer), clean_logp, and the paired changes delta_logit_diff and delta_clean_logp against
    the corrupt run (what `attribute` estimates). Pairs whose answers are equal carry no signal and are left out (a
    finding). `scores[l, p, i]` = pair i's patched logit_diff. `share_prompt` (default): each pass starts from
    the corrupt baseline's state right before the first call its cells edit, so the prompt call and the thoughts
    before a patched one are not recomputed per replica (`engine.run_cells(resume=)`); False runs every call.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> g = patch(cm, [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}],
    ...           positions="latents", progress=False)
    >>> g.layers, g.positions
    ([-1, 0, 1, 2], ['latent_0', 'latent_1'])
    """
    st, base_c = open_pairs(model, "patching", clean, corrupt, layers, positions, answers)
    base_k, bk = st.base, st.batch
    s = st.run(patch_edits(st.cells, st.columns, base_c), cells_per_pass, max_rows, share_prompt, progress)
    per = st.per_cell({"logit_diff": s["logit_diff"], "correct": s["correct"], "answer_logp": s["answer_logp"]},
                      edited=s["edited"])
    k_i = {k: base_k.scores[k].cpu().double().numpy() for k in ("logit_diff", "answer_logp")}
    ld_c = nanmean(base_c.scores["logit_diff"].cpu().double().numpy()[None])[0]
    ld_k = nanmean(k_i["logit_diff"][None])[0]
    d_ld = nanmean(per["logit_diff"] - k_i["logit_diff"])       # paired: over the pairs the cell exists for
    metrics = {"logit_diff": nanmean(per["logit_diff"]), "recovered": d_ld / (ld_c - ld_k),
               "clean_accuracy": nanmean(per["correct"]), "clean_logp": nanmean(per["answer_logp"]),
               "delta_logit_diff": d_ld, "delta_clean_logp": nanmean(per["answer_logp"] - k_i["answer_logp"])}
    base = {"logit_diff_clean": float(ld_c), "logit_diff_corrupt": float(ld_k),
            "clean_accuracy_clean": float(base_c.scores["correct"].mean()),
            "clean_accuracy_corrupt": float(base_k.scores["correct"].mean()),
            "clean_logp_clean": float(base_c.scores["answer_logp"].mean()),
            "clean_logp_corrupt": float(base_k.scores["answer_logp"].mean())}
    return st.grid(metrics, per["logit_diff"], _findings(bk, ld_c, ld_k) + st.partial_cells(s["edited"]),
                   n_pairs_used=int(bk.foil_valid.sum()),
                   baseline=base)
