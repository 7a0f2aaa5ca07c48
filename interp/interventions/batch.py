"""The problems of an intervention study, tokenised once, and how the answer is scored.

    >>> import codi
    >>> from interp.interventions.batch import prepare, qa
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, *qa([{"question": "2 + 3 = ?", "answer": "5"}], None), foils=["6"])
    >>> len(b), bool(b.foil_valid[0])
    (1, True)

Answer scores come from ONE teacher-forced pass of the reference response (`codi.batch.answer_response`:
"[eos] + answer template + eos", tokenised as in training): `correct` = greedy decoding would reproduce the
reference response token for token (argmax at every response position), `answer_logp` = summed log-probability of
the answer tokens, `margin` = logit of the first answer token minus the largest other logit, `logit_diff` (with a
foil) = logit of the reference token minus logit of the foil token at the first response position where
reference and foil differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from basemodels.facts import is_codi
from codi.batch import answer_response, left_pad, pad_id, prompt_token_ids, right_pad
from codi.loop import LatentRun

__all__ = ["Batch", "prepare", "score", "check_codi", "qa"]


def check_codi(model) -> None:
    """Raise TypeError unless `model` is a CODI runner (`codi.CODIModel` or its `merge()`).

    >>> check_codi(object())
    Traceback (most recent call last):
    ...
    TypeError: object is not a CODI model: ...
    """
    if not is_codi(model):
        raise TypeError(
            f"{type(model).__name__} is not a CODI model: ablation/patching/steering here run the CODI "
            "latent loop. Pass codi.CODIModel.from_pretrained(folder) (or its .merge())."
        )


def qa(prompts: Any, answers: Sequence[str] | None, require: bool = True) -> tuple[list[str], list[str | None]]:
    """Questions and answers from Problems / dicts (question|text, answer) / strings + `answers`; with
    `require=False` a missing answer is None instead of an error.

    >>> qa([{"question": "2 + 3 = ?", "answer": "5"}], None)
    (['2 + 3 = ?'], ['5'])
    >>> qa(["1 + 1 = ?"], ["2"])
    (['1 + 1 = ?'], ['2'])
    """
    if isinstance(prompts, str):
        raise TypeError("pass a list of problems or questions, e.g. [question], not a single string.")
    qs, ans = [], []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            qs.append(p)
            ans.append(None)
        elif isinstance(p, dict):
            qs.append(p.get("question", p.get("text")))
            ans.append(p.get("answer"))
        else:
            qs.append(getattr(p, "question", None))
            ans.append(getattr(p, "answer", None))
        if qs[-1] is None:
            raise ValueError(
                f"prompt {i} ({p!r:.80}) has no question: give Problems, dicts with 'question' "
                f"(or 'text') and 'answer', or strings with answers=[...]."
            )
    if answers is not None:
        if len(answers) != len(qs):
            raise ValueError(f"{len(answers)} answers for {len(qs)} prompts; give one answer per prompt.")
        ans = [str(a) for a in answers]
    missing = [i for i, a in enumerate(ans) if a is None]
    if missing and require:
        raise ValueError(f"prompts {missing[:5]} have no answer: pass answers=[...] (the correct final numbers).")
    return qs, [None if a is None else str(a) for a in ans]


@dataclass
class Batch:
    """B problems, tokenised once: prompts left-padded (no <bot>), reference responses right-padded.

    `ans_start[b]:ans_end[b]` are the answer-number tokens inside the response; `foil_pos/foil_tok` (optional)
    the first response position where the reference and a foil response differ and the foil's token there.

    >>> import codi; cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["2 + 3 = ?", "10 - 4 = ?"], ["5", "6"])
    >>> len(b), b.prompt_ids.shape[0], b.answers
    (2, 2, ['5', '6'])
    >>> [cm.tokenizer.decode(b.resp_ids[i, b.ans_start[i]:b.ans_end[i]]) for i in range(len(b))]   # answer tokens
    [' 5', ' 6']
    """

    questions: list[str]
    answers: list[str]
    prompt_ids: Int[Tensor, "batch p"]
    prompt_mask: Int[Tensor, "batch p"]
    resp_ids: Int[Tensor, "batch m"]
    resp_mask: Int[Tensor, "batch m"]
    ans_start: Int[Tensor, " batch"]
    ans_end: Int[Tensor, " batch"]
    foil_pos: Int[Tensor, " batch"] | None = None
    foil_tok: Int[Tensor, " batch"] | None = None
    foil_valid: Bool[Tensor, " batch"] | None = None

    def __len__(self) -> int:
        return len(self.questions)

    def tiled(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Prompt ids, prompt mask, response ids, response mask of `n` replicas of the batch (replica-major).

        >>> import codi; cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> b = prepare(cm, ["2 + 3 = ?"], ["5"])
        >>> [t.shape[0] for t in b.tiled(3)]
        [3, 3, 3, 3]
        """
        return (self.prompt_ids.repeat(n, 1), self.prompt_mask.repeat(n, 1), self.resp_ids.repeat(n, 1),
                self.resp_mask.repeat(n, 1))


def prepare(model, questions: Sequence[str], answers: Sequence[str], foils: Sequence[str] | None = None) -> Batch:
    """Tokenise `questions` and their reference `answers` (and optional `foils`: wrong answers to contrast).

    >>> import codi; cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> prepare(cm, ["2 + 3 = ?"], ["5"], foils=["6"]).foil_pos.shape
    torch.Size([1])
    """
    check_codi(model)
    if len(questions) != len(answers) or not questions:
        raise ValueError(f"need one answer per question and at least one question; got {len(questions)} questions "
                         f"and {len(answers)} answers.")
    tok, cfg = model.tokenizer, model.config
    p_ids, p_mask = left_pad([prompt_token_ids(tok, cfg, q) for q in questions], pad_id(tok))
    rows = [answer_response(tok, cfg, a) for a in answers]
    r_ids, r_mask = right_pad([r[0] for r in rows], pad_id(tok))
    dev = model.device
    b = Batch(list(questions), [str(a) for a in answers], p_ids.to(dev), p_mask.to(dev), r_ids.to(dev),
              r_mask.to(dev), torch.tensor([r[1] for r in rows], device=dev),
              torch.tensor([r[2] for r in rows], device=dev))
    if foils is not None:
        if len(foils) != len(answers):
            raise ValueError(f"{len(foils)} foils for {len(answers)} answers; give one foil per problem.")
        pos, tk, ok = [], [], []
        for (ref, _, _), f in zip(rows, foils):
            other = answer_response(tok, cfg, f)[0]
            diff = next((i for i, (x, y) in enumerate(zip(ref, other)) if x != y), None)
            ok.append(diff is not None)
            pos.append(diff if diff is not None else 0)
            tk.append(other[diff] if diff is not None else 0)
        b.foil_pos, b.foil_tok = torch.tensor(pos, device=dev), torch.tensor(tk, device=dev)
        b.foil_valid = torch.tensor(ok, device=dev)
    return b


def score(model, run: LatentRun, b: Batch, repeats: int = 1) -> dict[str, Tensor]:
    """Per-row answer scores of a teacher-forced run of `b` (tiled `repeats` times): correct (0/1), answer_logp,
    margin, and logit_diff when `b` has foils (NaN where the foil never differs from the reference).

    >>> import codi; cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["2 + 3 = ?"], ["5"], foils=["6"])
    >>> run = cm.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask)
    >>> sorted(score(cm, run, b))
    ['answer_logp', 'correct', 'logit_diff', 'margin']
    """
    logits = run.logits[..., : model.vocab_size]
    logits = logits if logits.dtype == torch.float64 else logits.float()
    ids, mask = b.resp_ids.repeat(repeats, 1), b.resp_mask.repeat(repeats, 1)
    start, end = b.ans_start.repeat(repeats), b.ans_end.repeat(repeats)
    lp = logits.log_softmax(-1).gather(-1, ids[..., None]).squeeze(-1)
    col = torch.arange(ids.shape[1], device=ids.device)[None]
    in_ans = (col >= start[:, None]) & (col < end[:, None])
    rows = torch.arange(ids.shape[0], device=ids.device)
    first = logits[rows, start]
    ref = first[rows, ids[rows, start]]
    other = first.scatter(1, ids[rows, start][:, None], float("-inf")).amax(1)
    out = {
        "correct": ((logits.argmax(-1) == ids) | (mask == 0)).all(1).float(),
        "answer_logp": (lp * in_ans).sum(1),
        "margin": ref - other,
    }
    if b.foil_pos is not None:
        pos, tok, ok = b.foil_pos.repeat(repeats), b.foil_tok.repeat(repeats), b.foil_valid.repeat(repeats)
        at = logits[rows, pos]
        ld = at[rows, ids[rows, pos]] - at[rows, tok]
        out["logit_diff"] = torch.where(ok, ld, torch.full_like(ld, float("nan")))
    return out
