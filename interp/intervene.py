"""The engine under ablation, patching and steering of CODI runs: cells, batched edits, answer scores.

A *cell* is a (layer, position) pair; layer is an int `0..n_layers` (residual stream, `interp.hooks`
convention) or `INPUT` (-1): the continuous thought as fed back into the model (`latent_input_fn` of
`codi.loop.latent_loop`, before GPT-2 adds its position embedding). An `Edit` sets or adds a vector at one
cell for every sample. `run_cells` runs many edit groups in a few forward passes: the batch is replicated
along the batch dimension, replica c carries edit group c, and one hook per layer (registered by
`interp.hooks.edit_residual`) writes each replica's cells at the right forward call of the latent loop.

    >>> import codi
    >>> from interp.intervene import prepare, baseline, Edit, run_cells
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4))
    >>> b = prepare(cm, ["Tom has 3 apples. He buys 4 more. How many?"], ["7"])
    >>> base = baseline(cm, b)
    >>> groups = [[Edit(layer=1, label="latent_0")], [Edit(layer=2, label="latent_1")]]   # zero two cells
    >>> scores = run_cells(cm, b, groups, base.plan)                 # one latent loop for both cells
    >>> scores["answer_logp"].shape                                  # [group, sample]
    torch.Size([2, 1])

Answer scores come from ONE teacher-forced pass of the reference response ("The answer is: N" + eos, tokenised
as in training): `correct` = greedy decoding would reproduce the reference response token for token (argmax at
every response position), `answer_logp` = summed log-probability of the answer tokens, `margin` = logit of the
first answer token minus the largest other logit, `logit_diff` (with a foil) = logit of the reference token
minus logit of the foil token at the first response position where reference and foil differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

import poslabels
from codi.batch import answer_tokens, left_pad, prompt_token_ids, right_pad
from codi.loop import LatentRun
from interp.codi_cache import codi_labels as _cache_labels
from interp.codi_cache import codi_plan
from interp.hooks import edit_residual, record_residuals
from interp.positions import Plan
from interp.prefix import PromptShare, run_ids_with

__all__ = [
    "INPUT",
    "Batch",
    "Baseline",
    "Edit",
    "prepare",
    "baseline",
    "run_cells",
    "codi_labels",
    "score",
    "check_codi",
]

INPUT = -1  # "layer" of the fed-back continuous thought (input level, before the model adds anything)


def check_codi(model) -> None:
    """Raise TypeError unless `model` is a CODI runner (`codi.CODIModel` or its `merge()`)."""
    if not (hasattr(model, "run_ids") and hasattr(model, "config") and hasattr(model, "model")):
        raise TypeError(
            f"{type(model).__name__} is not a CODI model: ablation/patching/steering here run the CODI "
            "latent loop. Pass codi.CODIModel.from_pretrained(folder) (or its .merge())."
        )


@dataclass
class Batch:
    """B problems, tokenised once: prompts left-padded (no <bot>), reference responses right-padded.

    `ans_start[b]:ans_end[b]` are the answer-number tokens inside the response; `foil_pos/foil_tok` (optional)
    the first response position where the reference and a foil response differ and the foil's token there.
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


def _response_ids(model, answer: str) -> tuple[list[int], int, int]:
    """Response token ids ([eos] + answer text + eos, as in training), answer start and end (exclusive)."""
    cfg, tok = model.config, model.tokenizer
    ids, before = answer_tokens(
        tok, cfg.answer_template.format(answer=str(answer).strip()), cfg.answer_marker
    )
    lead = [tok.eos_token_id] if cfg.eos_separators else []
    start = len(lead) + before + 1
    return lead + ids + [tok.eos_token_id], start, len(lead) + len(ids)


def prepare(
    model, questions: Sequence[str], answers: Sequence[str], foils: Sequence[str] | None = None
) -> Batch:
    """Tokenise `questions` and their reference `answers` (and optional `foils`: wrong answers to contrast).

    >>> b = prepare(cm, ["2 + 3 = ?"], ["5"], foils=["6"])
    """
    check_codi(model)
    if len(questions) != len(answers) or not questions:
        raise ValueError(
            f"need one answer per question and at least one question; got {len(questions)} questions "
            f"and {len(answers)} answers."
        )
    tok, cfg = model.tokenizer, model.config
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    p_ids, p_mask = left_pad([prompt_token_ids(tok, cfg, q) for q in questions], pad)
    rows = [_response_ids(model, a) for a in answers]
    r_ids, r_mask = right_pad([r[0] for r in rows], pad)
    dev = model.device
    b = Batch(
        list(questions),
        [str(a) for a in answers],
        p_ids.to(dev),
        p_mask.to(dev),
        r_ids.to(dev),
        r_mask.to(dev),
        torch.tensor([r[1] for r in rows], device=dev),
        torch.tensor([r[2] for r in rows], device=dev),
    )
    if foils is not None:
        if len(foils) != len(answers):
            raise ValueError(f"{len(foils)} foils for {len(answers)} answers; give one foil per problem.")
        pos, tk, ok = [], [], []
        for (ref, _, _), f in zip(rows, foils):
            other = _response_ids(model, f)[0]
            diff = next((i for i, (x, y) in enumerate(zip(ref, other)) if x != y), None)
            ok.append(diff is not None)
            pos.append(diff if diff is not None else 0)
            tk.append(other[diff] if diff is not None else 0)
        b.foil_pos, b.foil_tok = torch.tensor(pos, device=dev), torch.tensor(tk, device=dev)
        b.foil_valid = torch.tensor(ok, device=dev)
    return b


def _tile(b: Batch, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        b.prompt_ids.repeat(n, 1),
        b.prompt_mask.repeat(n, 1),
        b.resp_ids.repeat(n, 1),
        b.resp_mask.repeat(n, 1),
    )


# ---------------------------------------------------------------------------------------------- positions
def codi_labels(run: LatentRun, positions: str | Sequence[str] = "all") -> list[str]:
    """Labels of a CODI run ('all', 'latents', 'question', 'response' or a list), checked against the run."""
    prompt = next(s for s in run.segments if s.kind == "prompt")
    n_q = int(prompt.attention_mask.long().sum(1).max()) - 1
    n_lat = sum(s.kind == "latent" for s in run.segments)
    return _cache_labels(positions, n_q, n_lat, run.response_ids.shape[1])


# ---------------------------------------------------------------------------------------------- baseline
@dataclass
class Baseline:
    """The unedited run of a Batch: its plan, scores, and (when recorded) residuals per layer [B, P, d] at the
    plan's labels plus the fed-back thoughts `latent_inputs` [B, k, d]."""

    run: LatentRun
    plan: Plan
    scores: dict[str, Tensor]
    resid: dict[int, Float[Tensor, "batch pos d"]] = field(default_factory=dict)
    prompt: tuple | None = (
        None  # the prompt call's KV cache and last hidden (`interp.prefix.PromptShare.saved`)
    )

    @property
    def latent_inputs(self) -> Tensor:
        return self.run.latent_inputs


@torch.no_grad()
def baseline(
    model,
    b: Batch,
    layers: Sequence[int] = (),
    positions: str | Sequence[str] = "all",
    extra: Sequence[str] = (),
) -> Baseline:
    """Run `b` once without edits; record the residual at `layers` for the plan's `positions` (+ `extra`)."""
    check_codi(model)
    with ExitStack() as stack:
        rec = stack.enter_context(record_residuals(model.model, list(layers))) if layers else None
        share = PromptShare(model.model)
        run = run_ids_with(model, share, b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask)
    labels = codi_labels(run, positions)
    plan = codi_plan(run, labels + [x for x in extra if x not in labels])
    resid = {}
    if rec is not None:
        rows = torch.arange(len(b), device=b.prompt_ids.device)
        for layer in rec.layers:
            cells = [
                rec.residuals[layer][c][rows, plan.col[:, p].to(rows.device)] for p, c in enumerate(plan.call)
            ]
            resid[layer] = torch.stack(cells, 1)
    return Baseline(run, plan, score(model, run, b), resid, share.saved)


# ---------------------------------------------------------------------------------------------- edits
@dataclass
class Edit:
    """Set (`op="set"`) or add (`op="add"`) `value` at (`layer`, `label`) for every sample of a Batch.

    `value`: None (zeros, for set), a vector [d] (same for every sample) or per-sample rows [B, d]. Samples
    for which the label does not exist (e.g. q_30 of a short question), or that `valid` excludes, are left
    alone.
    """

    layer: int
    label: str
    value: Tensor | None = None
    op: str = "set"
    valid: Bool[Tensor, " batch"] | None = None  # optional: only these samples


class _Table:
    """Per layer key -> per forward call (latent step for INPUT): rows, columns, values, ops of one pass."""

    def __init__(self):
        self.parts: dict[tuple[int, int], list[tuple[Tensor, Tensor, Tensor, bool]]] = {}

    def add(self, layer: int, call: int, rows: Tensor, cols: Tensor, vals: Tensor, add: bool) -> None:
        self.parts.setdefault((layer, call), []).append((rows, cols, vals, add))

    def layers(self) -> list[int]:
        return sorted({k[0] for k in self.parts})

    def fn(self, layer: int, shift: int = 0):
        """The edit for `edit_residual` at `layer`; `shift` is added to the hook's call index (1 when the
        prompt
        call is replayed from a shared copy and so never reaches the hooks)."""
        parts = {c: v for (l_, c), v in self.parts.items() if l_ == layer}

        def edit(h: Tensor, call: int) -> Tensor:
            call = call + shift
            if call not in parts:
                return h
            h = h.clone()
            for rows, cols, vals, add in parts[call]:
                if h.dim() == 2:  # INPUT: thoughts [rows, d]
                    h.index_put_((rows,), vals.to(h.dtype), accumulate=add)
                else:
                    h.index_put_((rows, cols), vals.to(h.dtype), accumulate=add)
            return h

        return edit


def _fill(table: _Table, groups: Sequence[Sequence[Edit]], plan: Plan, nb: int, d: int, dev) -> None:
    ar = torch.arange(nb, device=dev)
    for g, edits in enumerate(groups):
        for e in edits:
            if e.label not in plan.labels:
                raise ValueError(f"edit at {e.label!r}: not among the planned positions {plan.labels[:8]}...")
            p = plan.labels.index(e.label)
            ok = plan.valid[:, p].to(dev)
            if e.valid is not None:
                ok = ok & e.valid.to(dev)
            if e.value is None:
                vals = torch.zeros(nb, d, device=dev)
            else:
                v = e.value.to(dev)
                vals = v.expand(nb, d) if v.dim() == 1 else v
            if e.op not in ("set", "add"):
                raise ValueError(f"Edit.op={e.op!r}; use 'set' or 'add'.")
            if e.layer == INPUT:
                key = poslabels.latent_index(e.label)
                if key is None:
                    raise ValueError(
                        f"layer 'input' (the fed-back thought) exists only at latent_* positions, not "
                        f"{e.label!r}; use a residual layer 0..n_layers there."
                    )
            else:
                key = plan.call[p]
            table.add(e.layer, key, g * nb + ar[ok], plan.col[:, p].to(dev)[ok], vals[ok], e.op == "add")


def _needs_prompt(group: Sequence[Edit], plan: Plan) -> bool:
    """True if the group edits a cell of the prompt call (then that call cannot be shared)."""
    return any(
        e.layer != INPUT and e.label in plan.labels and plan.call[plan.labels.index(e.label)] == 0
        for e in group
    )


@torch.no_grad()
def run_cells(
    model,
    b: Batch,
    groups: Sequence[Sequence[Edit]],
    plan: Plan,
    cells_per_pass: int | None = None,
    max_rows: int = 256,
    readout: tuple[int, str] | None = None,
    prompt: tuple | None = None,
    progress=None,
) -> dict[str, Tensor]:
    """Score `b` under each edit group; returns {score name: [group, sample]} (see `score`).

    Groups are packed `cells_per_pass` at a time (default: as many as fit in `max_rows` rows) into one
    replicated batch, so G groups cost ceil(G / cells_per_pass) latent loops. `cells_per_pass=1` is the
    cell-by-cell loop. `prompt` (`Baseline.prompt`): passes whose groups leave the prompt call alone reuse
    that call from the baseline run instead of recomputing it per replica (groups that edit question/<bot>
    cells are packed apart). `readout=(layer, label)` also returns `"readout"`: the residual there after the
    edits, [group, sample, d].
    """
    check_codi(model)
    nb = len(b)
    per = cells_per_pass or max(1, max_rows // nb)
    at_prompt = readout is not None and plan.call[plan.labels.index(readout[1])] == 0
    first = [i for i, g in enumerate(groups) if prompt is None or at_prompt or _needs_prompt(g, plan)]
    rest = [i for i in range(len(groups)) if i not in set(first)]
    chunks = [(first[i : i + per], False) for i in range(0, len(first), per)]
    chunks += [(rest[i : i + per], True) for i in range(0, len(rest), per)]
    out: dict[str, list[Tensor]] = {}
    for idx, shared in progress(chunks) if progress else chunks:
        s = _one_pass(model, b, [groups[i] for i in idx], plan, readout, prompt if shared else None)
        for k, v in s.items():
            out.setdefault(k, []).append(v)
    order = torch.tensor([i for idx, _ in chunks for i in idx]).argsort()
    return {k: torch.cat(v, 0)[order.to(v[0].device)] for k, v in out.items()}


def _one_pass(
    model, b: Batch, part: Sequence[Sequence[Edit]], plan: Plan, readout, prompt
) -> dict[str, Tensor]:
    nb, dev = len(b), b.prompt_ids.device
    table = _Table()
    _fill(table, part, plan, nb, model.d_model, dev)
    ids, mask, r_ids, r_mask = _tile(b, len(part))
    shift = 1 if prompt is not None else 0
    base = PromptShare(model.model, saved=prompt, rows=torch.arange(nb, device=dev).repeat(len(part)))
    with ExitStack() as stack:
        for layer in table.layers():
            if layer != INPUT:
                stack.enter_context(edit_residual(model.model, layer, table.fn(layer, shift)))
        rec = stack.enter_context(record_residuals(model.model, [readout[0]])) if readout else None
        edit_input = table.fn(INPUT) if INPUT in table.layers() else None
        fn = (lambda j, thought: edit_input(thought, j)) if edit_input else None
        run = run_ids_with(model, base, ids, mask, r_ids, r_mask, latent_input_fn=fn)
    s = score(model, run, b, repeats=len(part))
    if rec is not None:
        p = plan.labels.index(readout[1])
        rows = torch.arange(len(part) * nb, device=dev)
        s["readout"] = rec.residuals[readout[0]][plan.call[p] - shift][
            rows, plan.col[:, p].to(dev).repeat(len(part))
        ]
    return {k: v.reshape(len(part), nb, *v.shape[1:]) for k, v in s.items()}


# ---------------------------------------------------------------------------------------------- scores
def score(model, run: LatentRun, b: Batch, repeats: int = 1) -> dict[str, Tensor]:
    """Per-row answer scores of a teacher-forced run of `b` (tiled `repeats` times): correct (0/1),
    answer_logp,
    margin, and logit_diff when `b` has foils (NaN where the foil never differs from the reference)."""
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
