"""The engine under ablation, patching and steering of CODI runs: cells, batched edits, answer scores.

A *cell* is a (layer, position) pair; layer is an int `0..n_layers` (residual stream, `interp.hooks`
convention) or `INPUT` (-1): the continuous thought as fed back into the model (`latent_input_fn` of
`codi.loop.latent_loop`, before GPT-2 adds its position embedding). An `Edit` sets or adds a vector at one
cell for every sample. `run_cells` runs many edit groups in a few forward passes: the batch is replicated
along the batch dimension, replica c carries edit group c, and one hook per layer (registered by
`interp.hooks.edit_residual`) writes each replica's cells at the right forward call of the latent loop.

Resuming: the baseline run keeps its state (`codi.loopstate.PromptState`: KV cache, last hidden, thoughts so far)
before every call (`LatentRun.state_at`). Groups are packed by the first call they edit and each pass starts
there, tiled to the replicas: a cell at thought j skips the prompt call and thoughts 0..j-1 (the shared prompt of
earlier versions is the case j = 0). The hooks number calls by the loop's own clock (`interp.hooks.CallClock`), so
call numbers mean the same thing with and without resuming (`Plan.call` of the baseline).

    >>> import codi
    >>> from interp.interventions.engine import baseline, Edit, run_cells
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()
    >>> b = prepare(cm, ["Tom has 3 apples. He buys 4 more. How many?"], ["7"])
    >>> base = baseline(cm, b)
    >>> groups = [[Edit(layer=1, label="latent_0")], [Edit(layer=2, label="latent_1")]]   # zero two cells
    >>> scores = run_cells(cm, b, groups, base.plan, resume=base)   # passes start at thoughts 0 and 1
    >>> scores["answer_logp"].shape                                  # [group, sample]
    torch.Size([2, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor

import poslabels
from argcheck import BadArgument
from codi.loop import LatentRun, PromptState
from interp.codi_cache import codi_labels, codi_plan
from interp.hooks import CallClock, edit_residual, record_residuals
from interp.interventions.batch import Batch, check_codi, score
from interp.interventions.edits import INPUT, Edit, edited
from interp.positions import Plan

__all__ = ["INPUT", "Baseline", "Edit", "baseline", "batch_labels", "edited", "from_run", "run_cells", "run_labels"]

ROWS_PER_CALL = 12  # a pass's fixed cost per forward call, in rows of that call (`run_cells` packs by it)


def run_labels(run: LatentRun, positions: str | Sequence[str] = "all") -> list[str]:
    """Position labels of a CODI run ('all', 'latents', 'question', 'response' or a list), checked against it.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> run_labels(cm.run(["1 + 2 = ?"], responses=["3"]), "latents")
    ['latent_0', 'latent_1']
    """
    prompt = next(s for s in run.segments if s.kind == "prompt")
    n_q = int(prompt.attention_mask.long().sum(1).max()) - 1
    n_lat = sum(s.kind == "latent" for s in run.segments)
    return codi_labels(positions, n_q, n_lat, run.response_ids.shape[1])


def batch_labels(model, b: Batch, positions: str | Sequence[str] = "all") -> list[str]:
    """The position labels a run of batch `b` will have, known before running it (so a label that does not exist
    is refused before any forward call): `run_labels` of that run. The batch's prompt is the question alone (the
    run appends <bot>).

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["1 + 2 = ?"], ["3"])
    >>> batch_labels(cm, b, "all") == run_labels(baseline(cm, b).run, "all")
    True
    >>> batch_labels(cm, b, "latents")
    ['latent_0', 'latent_1']
    """
    return codi_labels(positions, int(b.prompt_mask.long().sum(1).max()), model.config.num_latents,
                       b.resp_ids.shape[1])


# ---------------------------------------------------------------------------------------------- baseline
@dataclass
class Baseline:
    """The unedited run of a Batch: its plan, scores, and (when recorded) residuals per layer [B, P, d] at the
    plan's labels plus the fed-back thoughts `latent_inputs` [B, k, d]; `prompt` is the prompt call's state and
    `run.state_at(j)` the state before thought j, from which passes of edits at thought j onwards start.

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> base = baseline(cm, prepare(cm, ["2 + 3 = ?"], ["5"]), layers=[2], positions=["bot", "latents"])
    >>> base.plan.labels, base.plan.call, sorted(base.scores)
    (['bot', 'latent_0', 'latent_1'], [0, 1, 2], ['answer_logp', 'correct', 'margin'])
    >>> tuple(base.resid[2].shape), base.prompt is not None
    ((1, 3, 64), True)
    """

    run: LatentRun
    plan: Plan
    scores: dict[str, Tensor]
    resid: dict[int, Float[Tensor, "batch pos d"]] = field(default_factory=dict)
    prompt: PromptState | None = None

    @property
    def latent_inputs(self) -> Tensor:
        """The thoughts as fed back [batch, k, d] (`LatentRun.latent_inputs`).

        >>> import codi
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> baseline(cm, prepare(cm, ["1 + 1 = ?"], ["2"])).latent_inputs.shape
        torch.Size([1, 2, 64])
        """
        return self.run.latent_inputs


@torch.no_grad()
def baseline(model, b: Batch, layers: Sequence[int] = (), positions: str | Sequence[str] = "all",
             extra: Sequence[str] = ()) -> Baseline:
    """Run `b` once without edits; record the residual at `layers` for the plan's `positions` (+ `extra`).

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> base = baseline(cm, prepare(cm, ["2 + 3 = ?"], ["5"]), layers=[1], positions="latents")
    >>> base.plan.labels, tuple(base.resid[1].shape)
    (['latent_0', 'latent_1'], (1, 2, 64))
    """
    check_codi(model)
    clock = CallClock()
    with ExitStack() as stack:
        rec = stack.enter_context(record_residuals(model.model, list(layers), clock=clock)) if layers else None
        run = model.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_prompt_state=True,
                            on_call=clock)
    base = from_run(model, b, run, positions, extra)
    if rec is not None:  # the plan's cells, zero where a sample lacks one (positions.Plan.gather: the one gather)
        for layer in rec.layers:
            base.resid[layer] = base.plan.gather(dict(zip(rec.calls, rec.residuals[layer])))
    return base


def from_run(model, b: Batch, run: LatentRun, positions: str | Sequence[str] = "all",
             extra: Sequence[str] = ()) -> Baseline:
    """The `Baseline` of an unedited run of `b` made elsewhere (with keep_prompt_state=True, so passes can
    resume from it): its plan at `positions` (+ `extra`) and its scores; no residuals.

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["2 + 3 = ?"], ["5"])
    >>> run = cm.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_prompt_state=True)
    >>> base = from_run(cm, b, run, "latents")
    >>> base.plan.labels, bool(base.scores["answer_logp"] == baseline(cm, b).scores["answer_logp"])
    (['latent_0', 'latent_1'], True)
    """
    labels = run_labels(run, positions)
    plan = codi_plan(run, labels + [x for x in extra if x not in labels])
    return Baseline(run, plan, score(model, run, b), {}, run.prompt_state)


class _Table:
    """Per layer key -> per forward call (latent step for INPUT): rows, columns, values, ops of one pass."""

    def __init__(self):
        self.parts: dict[tuple[int, int], list[tuple[Tensor, Tensor, Tensor, bool]]] = {}

    def add(self, layer: int, call: int, rows: Tensor, cols: Tensor, vals: Tensor, add: bool) -> None:
        self.parts.setdefault((layer, call), []).append((rows, cols, vals, add))

    def layers(self) -> list[int]:
        return sorted({k[0] for k in self.parts})

    def fn(self, layer: int):
        """The edit at `layer` for `edit_residual` (the hook's call number is the loop's `Segment.call`)."""
        parts = {c: v for (l_, c), v in self.parts.items() if l_ == layer}

        def edit(h: Tensor, call: int) -> Tensor:
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
            ok = e.rows(plan, nb).to(dev)
            p = plan.labels.index(e.label)
            vals = e.values(nb, d, dev)
            if e.layer == INPUT:
                key = poslabels.latent_index(e.label)
                if key is None:
                    raise ValueError(f"layer 'input' (the fed-back thought) exists only at latent_* positions, not "
                                     f"{e.label!r}; use a residual layer 0..n_layers there.")
            else:
                key = plan.call[p]
            table.add(e.layer, key, g * nb + ar[ok], plan.col[:, p].to(dev)[ok], vals[ok], e.op == "add")


def _first_call(group: Sequence[Edit], plan: Plan, last: int) -> int:
    """The first forward call a group edits (`last`, the <eot> call, for an empty group); a pass can start from
    the baseline's state right before it. A label the plan lacks counts as call 0 (`_fill` refuses it)."""
    calls = [last]
    for e in group:
        if e.layer == INPUT:
            j = poslabels.latent_index(e.label)
            calls.append(0 if j is None else j + 1)
        else:
            calls.append(plan.call[plan.labels.index(e.label)] if e.label in plan.labels else 0)
    return min(calls)


class _States:
    """Where passes may start: the baseline's state before each call, cut once per step (`LatentRun.state_at`);
    with only a prompt state, call 1 at the latest; with neither, every pass runs every call."""

    def __init__(self, resume: Baseline | None, prompt: PromptState | None):
        self.resume, self.prompt, self.made = resume, prompt, {}

    def latest(self) -> int:
        if self.resume is not None:
            return self.resume.run.latents.shape[1] + 1
        return 1 if self.prompt is not None else 0

    def before(self, call: int) -> PromptState | None:
        if call < 1:
            return None
        if self.resume is None:
            return self.prompt
        if call - 1 not in self.made:
            self.made[call - 1] = self.resume.run.state_at(call - 1) or self.resume.prompt
        return self.made[call - 1]


@torch.no_grad()
def run_cells(model, b: Batch, groups: Sequence[Sequence[Edit]], plan: Plan, cells_per_pass: int | None = None,
              max_rows: int = 256, readout: tuple[int, str] | None = None, prompt: PromptState | None = None,
              progress=None, resume: Baseline | None = None) -> dict[str, Tensor]:
    """Score `b` under each edit group; returns {score name: [group, sample]} (see `interventions.batch.score`).

    Groups are packed `cells_per_pass` at a time (default: as many as fit in `max_rows` rows) into one
    replicated batch, so G groups cost ceil(G / cells_per_pass) latent loops. `cells_per_pass=1` is the
    cell-by-cell loop. `resume` (the `Baseline` of `b`): groups are packed by the first forward call they edit,
    and each pass starts from the baseline run's state right before that call (`LatentRun.state_at`) instead of
    recomputing the calls before it per replica: a cell at thought j skips the prompt call and thoughts 0..j-1.
    A pass costs a fixed amount per call it runs (weights read, hooks) plus a cost per row: the groups of a later
    call join the previous pass (where it has room) when the calls their rows would recompute there cost less
    than the calls a pass of their own would run, taking one call's fixed cost as `ROWS_PER_CALL` rows (one
    latent step of smollm2-135m after a 56-token prompt, one thread of this 2-core CPU, fitted over 4..256 rows:
    0.066 s + 3.41 ms a row = 19.5 rows in `benchmarks/results/pass_cost.md`, 12.3 and 17.5 in earlier fits; the
    smollm2 sweep of `benchmarks/results/patching.md` packs the same for any value from 12 to 21).
    `prompt` (`Baseline.prompt`) alone reuses only the prompt call. `readout=(layer, label)` also returns
    `"readout"`: the residual there after the edits, [group, sample, d] (passes then start no later than its call).

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["2 + 3 = ?"], ["5"]); base = baseline(cm, b)
    >>> s = run_cells(cm, b, [[], [Edit(2, "latent_1")]], base.plan, cells_per_pass=1)
    >>> bool(s["answer_logp"][0, 0] == base.scores["answer_logp"][0])    # the empty group is the baseline
    True
    >>> r = run_cells(cm, b, [[], [Edit(2, "latent_1")]], base.plan, resume=base)   # passes start at calls 3 and 2
    >>> bool((r["answer_logp"] == s["answer_logp"]).all())
    True
    """
    check_codi(model)
    nb = len(b)
    per = cells_per_pass or max(1, max_rows // nb)
    states = _States(resume, prompt)
    latest = states.latest()
    if readout is not None:
        if readout[1] not in plan.labels:
            raise BadArgument("readout", readout, f"position {readout[1]!r} is not among the planned positions "
                              f"{plan.labels[:8]}...", "plan it (baseline(..., extra=[label])) or read another")
        latest = min(latest, plan.call[plan.labels.index(readout[1])])
    keys = [min(_first_call(g, plan, latest), latest) for g in groups]
    n_calls = model.config.num_latents + 2  # prompt, k thoughts, <eot> + response
    chunks: list[tuple[list[int], int]] = []
    for key in sorted(set(keys)):
        idx = [i for i, k in enumerate(keys) if k == key]
        if chunks and len(chunks[-1][0]) + len(idx) <= per and \
                len(idx) * nb * (key - chunks[-1][1]) < ROWS_PER_CALL * (n_calls - key):
            chunks[-1] = (chunks[-1][0] + idx, chunks[-1][1])  # cheaper to ride along with the earlier pass
            continue
        chunks += [(idx[i: i + per], key) for i in range(0, len(idx), per)]
    out: dict[str, list[Tensor]] = {}
    for idx, key in progress(chunks) if progress else chunks:
        s = _one_pass(model, b, [groups[i] for i in idx], plan, readout, states.before(key))
        for k, v in s.items():
            out.setdefault(k, []).append(v)
    order = torch.tensor([i for idx, _ in chunks for i in idx]).argsort()
    return {k: torch.cat(v, 0)[order.to(v[0].device)] for k, v in out.items()}


def _one_pass(model, b: Batch, part: Sequence[Sequence[Edit]], plan: Plan, readout,
              prompt: PromptState | None) -> dict[str, Tensor]:
    nb, dev = len(b), b.prompt_ids.device
    table = _Table()
    _fill(table, part, plan, nb, model.d_model, dev)
    ids, mask, r_ids, r_mask = b.tiled(len(part))
    state = prompt.rows(torch.arange(nb, device=dev).repeat(len(part))) if prompt is not None else None
    clock = CallClock()
    with ExitStack() as stack:
        for layer in table.layers():
            if layer != INPUT:
                stack.enter_context(edit_residual(model.model, layer, table.fn(layer), clock=clock))
        rec = stack.enter_context(record_residuals(model.model, [readout[0]], clock=clock)) if readout else None
        edit_input = table.fn(INPUT) if INPUT in table.layers() else None
        fn = (lambda j, thought: edit_input(thought, j)) if edit_input else None
        run = model.run_ids(ids, mask, r_ids, r_mask, latent_input_fn=fn, prompt_state=state, on_call=clock)
    s = score(model, run, b, repeats=len(part))
    if rec is not None:
        cell = plan.take([readout[1]]).tile(len(part))
        s["readout"] = cell.gather(dict(zip(rec.calls, rec.residuals[readout[0]])))[:, 0]
    return {k: v.reshape(len(part), nb, *v.shape[1:]) for k, v in s.items()}
