"""THE latent loop of CODI, written once: prompt + <bot>, k continuous thoughts, <eot> + response.

Every call goes through the HF model's own forward (peft-wrapped or merged), so hooks on its modules see every
call. Prompts are LEFT-padded; every call gets the full 2-D attention mask of everything seen so far and position
ids `cumsum(mask) - 1`, so a question's latents and answer do not depend on what else is in the batch.

Calls, in order (`Segment.call` numbers them):
1. prompt: [q tokens..., <bot>], one call (call 0);
2. latent j = 0..k-1: one call each (call j + 1), input = prj(last-layer hidden of the previous call's last
   position), or `latent_input_fn(j, that)`;
3. <eot> plus the teacher-forced response tokens in ONE call (call k + 1; segments "eot" and "response" share it);
   when generating, every further token is one call (segment "response", index j, length 1).
The "last-layer hidden" is HF `hidden_states[-1]` (after the final norm), as in the official code. The prompt call and
the latent steps only need that hidden state, so they skip the LM head (HF `logits_to_keep` = no position: a
latent step of smollm2-135m takes 0.75-0.86 of the time with the head, `benchmarks/results/pass_cost.md`); hidden
states are unchanged.

Prompt reuse. Everything after the prompt call depends on the prompt only through that call's KV cache and its
last-layer hidden state at the last position. `keep_prompt_state=True` returns both in `run.prompt_state` (a
`PromptState`); handing it back as `prompt_state=` (to a run of the same prompts, or of replicas of them:
`state.rows(index)`) skips the prompt call: call 0 is not run, the run starts at call 1, and its segments,
call numbers and results are those of a full run (the prompt segment is still listed, as call 0). `on_call(n)` is
called right before forward call n runs, so hooks that number calls by it (`interp.hooks.CallClock`) see the same
numbers with and without reuse. Interventions that leave the prompt call alone reuse it across replicas this way
(example: `PromptState`). Later steps too: `run.state_at(j)` of a kept run is the state right before latent step j
(`codi.loopstate`); a run given it starts at call j + 1, its thoughts before j taken from the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from codi.loopstate import PromptState, check_state, cut_state, detached_copy

__all__ = ["Segment", "LatentRun", "PromptState", "latent_loop", "position_ids"]  # PromptState: codi.loopstate


@dataclass
class Segment:
    """One stretch of one base-model forward call. `index`: latent step j, first response token j, else 0.

    >>> from basemodels import load_model
    >>> m = load_model("tiny-gpt2"); d = m.d_model
    >>> run = latent_loop(m.model, torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), prj=torch.nn.Identity(),
    ...                   num_latents=2, eot_embeds=torch.zeros(d), bot_embeds=torch.zeros(d),
    ...                   response_ids=torch.tensor([[3, 4]]))
    >>> [(s.kind, s.index, s.length, s.call, s.offset) for s in run.segments]   # <eot> and response share call 3
    [('prompt', 0, 3, 0, 0), ('latent', 0, 1, 1, 0), ('latent', 1, 1, 2, 0), ('eot', 0, 1, 3, 0),
     ('response', 0, 2, 3, 1)]
    """

    kind: str  # "prompt" | "latent" | "eot" | "response"
    index: int
    length: int
    attention_mask: Tensor  # [batch, length], 1 = real token
    call: int = 0  # which forward call (0-based, in call order)
    offset: int = 0  # where this segment starts inside that call's sequence


@dataclass
class LatentRun:
    """What one pass of the latent loop produced (see module docstring).

    >>> from basemodels import load_model
    >>> m = load_model("tiny-gpt2"); d = m.d_model
    >>> run = latent_loop(m.model, torch.tensor([[5, 6], [0, 7]]), torch.tensor([[1, 1], [0, 1]]),
    ...                   prj=torch.nn.Identity(), num_latents=3, eot_embeds=torch.zeros(d),
    ...                   bot_embeds=torch.zeros(d), max_new_tokens=2)
    >>> tuple(run.latents.shape), tuple(run.logits.shape), run.n_forced, run.n_calls   # 2 generated tokens
    ((2, 3, 64), (2, 2, 512), 0, 6)
    """

    segments: list[Segment]
    latents: Float[Tensor, "batch k d"]  # last-layer hidden that produced each fed-back thought (before prj)
    latent_inputs: Float[Tensor, "batch k d"]  # the thoughts as fed back (after prj / latent_input_fn)
    response_ids: Int[Tensor, "batch m"]  # teacher-forced prefix + generated tokens (pad after eos)
    response_mask: Int[Tensor, "batch m"]
    logits: Float[Tensor, "batch m vocab"] | None  # logits that predict each response token
    hidden_states: list[tuple[Tensor, ...]] | None = None  # per call: HF hidden_states, when asked for
    attention_mask: Tensor | None = None  # [batch, total length] mask over every position of the run
    n_forced: int = 0  # how many response tokens were teacher forced (the rest were generated)
    extra: dict = field(default_factory=dict)
    prompt_state: PromptState | None = None  # with keep_prompt_state=True (or the state that was reused)
    last_hidden: Float[Tensor, "batch d"] | None = None  # last-layer hidden after the last latent step
    cache: Any = None  # the run's KV cache at its end, kept with keep_prompt_state=True (for `state_at`)

    def state_at(self, step: int) -> PromptState | None:
        """The loop's state right before latent step `step` (0: after the prompt call; k: before the <eot> call),
        to hand back (`.rows(index)`) as `prompt_state=`: the run then starts at call step + 1. Needs a run made
        with keep_prompt_state=True; None where its cache cannot be cut (sliding-window layers,
        `codi.loopstate.cut_state`), then only step 0 (`prompt_state`) resumes.

        >>> from basemodels import load_model
        >>> m = load_model("tiny-llama"); d = m.d_model
        >>> run = latent_loop(m.model, torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), prj=torch.nn.Identity(),
        ...                   num_latents=2, eot_embeds=torch.zeros(d), keep_prompt_state=True)
        >>> [run.state_at(j).mask.shape[1] for j in range(3)]         # prompt (2 tokens), then one per thought
        [2, 3, 4]
        """
        k = self.latents.shape[1]
        if self.prompt_state is None or self.cache is None:
            raise ValueError("state_at needs a run made with keep_prompt_state=True.")
        if isinstance(step, bool) or not isinstance(step, int) or not self.prompt_state.step <= step <= k:
            raise ValueError(f"step={step!r}: a state exists before latent steps {self.prompt_state.step}..{k} of this "
                             "run (k = the <eot> call).")
        if step == self.prompt_state.step:
            return self.prompt_state
        p = self.prompt_state.mask.shape[1] - self.prompt_state.step
        return cut_state(self.prompt_state.ids, self.cache, self.attention_mask, self.latents, self.latent_inputs,
                         self.last_hidden, p, step)

    def detached(self) -> LatentRun:
        """This run with no autograd graph behind it (one made with gradients, kept for its scores or to resume
        from): thoughts, logits, hidden states and the final KV cache (`detached_copy`) cut from the graph; the
        prompt state is detached when the loop makes it.

        >>> from basemodels import load_model
        >>> m = load_model("tiny-llama"); d = m.d_model
        >>> run = latent_loop(m.model, torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), prj=torch.nn.Linear(d, d),
        ...                   num_latents=2, eot_embeds=torch.zeros(d), keep_prompt_state=True)
        >>> run.latent_inputs.requires_grad, run.detached().latent_inputs.requires_grad
        (True, False)
        """
        def cut(x: Any) -> Any:
            return x.detach() if isinstance(x, Tensor) else x

        hidden = None if self.hidden_states is None else [tuple(map(cut, h)) for h in self.hidden_states]
        return replace(self, latents=cut(self.latents), latent_inputs=cut(self.latent_inputs), logits=cut(self.logits),
                       hidden_states=hidden, last_hidden=cut(self.last_hidden),
                       cache=None if self.cache is None else detached_copy(self.cache))

    @property
    def n_calls(self) -> int:
        """How many forward calls the run made (a reused prompt call counts: it is call 0).

        >>> LatentRun([Segment("prompt", 0, 2, torch.ones(1, 2), 0)], *[torch.zeros(1, 0, 4)] * 2,
        ...           torch.zeros(1, 0), torch.zeros(1, 0), None).n_calls
        1
        """
        return self.segments[-1].call + 1 if self.segments else 0


def position_ids(mask: Int[Tensor, "batch total"], length: int) -> Int[Tensor, "batch length"]:
    """Position ids of the last `length` columns of a left-padded mask: cumsum(mask) - 1 (pads get 1, as in HF).

    >>> position_ids(torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]), 2).tolist()
    [[1, 2], [2, 3]]
    """
    pos = mask.long().cumsum(-1) - 1
    pos = pos.masked_fill(mask == 0, 1)
    return pos[:, -length:]


def _as_rows(vec: Tensor, batch: int, name: str, d: int) -> Tensor:
    """[d] / [1, d] / [batch, 1, d] / [batch, d] -> [batch, 1, d]."""
    if vec.dim() == 1:
        vec = vec[None, None]
    elif vec.dim() == 2:
        vec = vec[:, None]
    if vec.dim() != 3 or vec.shape[-1] != d or vec.shape[1] != 1 or vec.shape[0] not in (1, batch):
        raise ValueError(f"{name} must have shape [d], [batch, d] or [batch, 1, d] with d={d}; "
                         f"got {tuple(vec.shape)}")
    return vec.expand(batch, 1, d)


def _pick(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _Caller:
    """Calls the model with the running mask, position ids and KV cache; keeps the segment bookkeeping."""

    def __init__(self, model, keep_hidden: bool, on_call: Callable[[int], None] | None):
        self.model, self.keep_hidden, self.on_call = model, keep_hidden, on_call
        self.cache = None
        self.mask: Tensor | None = None
        self.segments: list[Segment] = []
        self.hidden: list[tuple[Tensor, ...]] = []
        self.calls = 0

    def resume(self, state: PromptState) -> None:
        """Stand where `state` left off: its cache and mask, the segments of the calls it holds listed (the
        prompt, then one per latent step already run), the next call is state.step + 1."""
        self.cache, self.mask = state.cache, state.mask
        p = state.mask.shape[1] - state.step
        self.segments.append(Segment("prompt", 0, p, state.mask[:, :p], 0, 0))
        for j in range(state.step):
            self.segments.append(Segment("latent", j, 1, state.mask[:, p + j:p + j + 1], j + 1, 0))
        self.calls = state.step + 1

    def __call__(self, embeds: Tensor, new_mask: Tensor, parts: list[tuple[str, int, int]], all_logits: bool):
        self.mask = new_mask if self.mask is None else torch.cat([self.mask, new_mask], dim=1)
        length = embeds.shape[1]
        if self.on_call is not None:
            self.on_call(self.calls)
        # a call whose logits nobody reads (the prompt call, each latent step) keeps none: the LM head is skipped
        keep = 0 if all_logits else embeds.new_zeros(0, dtype=torch.long)
        out = self.model(inputs_embeds=embeds, attention_mask=self.mask, position_ids=position_ids(self.mask, length),
                         past_key_values=self.cache, use_cache=True, output_hidden_states=True, logits_to_keep=keep)
        self.cache = out.past_key_values
        offset = 0
        for kind, index, seg_len in parts:
            seg_mask = new_mask[:, offset:offset + seg_len]
            self.segments.append(Segment(kind, index, seg_len, seg_mask, self.calls, offset))
            offset += seg_len
        if self.keep_hidden:
            self.hidden.append(tuple(out.hidden_states))
        self.calls += 1
        return out


def _generate(call: _Caller, embed, last: Tensor, max_new_tokens: int, first_index: int, resp_ids: list,
              resp_mask: list, logits: list | None, *, eos_token_id, pad_token_id, vocab_size, temperature,
              generator) -> None:
    """Pick a token from `last`, feed it, repeat; appends to resp_ids / resp_mask / logits in place."""
    batch = last.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=last.device)
    for t in range(max_new_tokens):
        nxt = _pick(last[:, :vocab_size] if vocab_size else last, temperature, generator)
        nxt = torch.where(finished, torch.full_like(nxt, pad_token_id), nxt)
        resp_ids.append(nxt[:, None])
        resp_mask.append((~finished).long()[:, None])
        if logits is not None:
            logits.append(last[:, None])
        if eos_token_id is not None:
            finished = finished | (nxt == eos_token_id)
        if t == max_new_tokens - 1 or bool(finished.all()):
            return
        out = call(embed(nxt[:, None]), call.mask.new_ones(batch, 1), [("response", first_index + t, 1)],
                   all_logits=True)
        last = out.logits[:, -1]


def latent_loop(
    model,
    prompt_ids: Int[Tensor, "batch p"],
    prompt_mask: Int[Tensor, "batch p"],
    *,
    prj: Callable[[Tensor], Tensor],
    num_latents: int,
    eot_embeds: Tensor,
    bot_embeds: Tensor | None = None,
    response_ids: Int[Tensor, "batch m"] | None = None,
    response_mask: Int[Tensor, "batch m"] | None = None,
    max_new_tokens: int = 0,
    latent_input_fn: Callable[[int, Tensor], Tensor] | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    vocab_size: int | None = None,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    keep_hidden_states: bool = False,
    keep_logits: bool = True,
    prompt_state: PromptState | None = None,
    keep_prompt_state: bool = False,
    on_call: Callable[[int], None] | None = None,
) -> LatentRun:
    """Run prompt -> k latent steps -> <eot> (+ teacher-forced `response_ids`) -> `max_new_tokens` generated tokens.

    `prompt_ids` must be LEFT-padded (`prompt_mask` 0 on the left). `bot_embeds` ([d]) is appended to every
    prompt; leave it None when `prompt_ids` already end with a <bot> token id. `response_ids` (right-padded,
    `response_mask`) are teacher forced in the <eot> call; generation continues after them (then they must have
    the same length in every row). `vocab_size` limits sampling/argmax to the first rows of the LM head.
    Greedy when `temperature == 0`. Generation stops when every row has produced `eos_token_id`.
    `keep_prompt_state` / `prompt_state` / `on_call`: prompt reuse and call numbering (module docstring).

    >>> from basemodels import load_model
    >>> m = load_model("tiny-llama"); d = m.d_model
    >>> ids, mask = torch.tensor([[0, 5, 6], [7, 8, 9]]), torch.tensor([[0, 1, 1], [1, 1, 1]])   # left-padded
    >>> run = latent_loop(m.model, ids, mask, prj=torch.nn.Identity(), num_latents=2, eot_embeds=torch.zeros(d),
    ...                   bot_embeds=torch.zeros(d), response_ids=torch.tensor([[3, 4], [3, 4]]),
    ...                   max_new_tokens=3, eos_token_id=0)
    >>> run.n_forced, run.response_ids[:, :2].tolist(), tuple(run.latents.shape)   # forced prefix, then generated
    (2, [[3, 4], [3, 4]], (2, 2, 64))
    """
    if num_latents < 0:
        raise ValueError(f"num_latents={num_latents} must be >= 0")
    if prompt_ids.shape != prompt_mask.shape:
        raise ValueError(f"prompt_ids {tuple(prompt_ids.shape)} and prompt_mask {tuple(prompt_mask.shape)} differ")
    if prompt_mask.shape[1] > 1 and bool((prompt_mask[:, -1] == 0).any()):
        raise ValueError("prompt_mask has padding on the right: the latent loop needs LEFT-padded prompts "
                         "(tokenizer.padding_side = 'left').")
    embed = model.get_input_embeddings()
    batch, d = prompt_ids.shape[0], embed.weight.shape[1]
    dev, dtype = prompt_ids.device, embed.weight.dtype
    call = _Caller(model, keep_hidden_states, on_call)

    # 1. prompt (+ <bot>): run, or stand where a given prompt state left off
    mask = prompt_mask.long()
    if bot_embeds is not None:
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
    first = 0
    if prompt_state is None:
        h, prompt_state = _prompt_call(call, embed, prompt_ids, mask, bot_embeds, keep_prompt_state)
    else:
        check_state(prompt_state, prompt_ids, mask, keep_hidden_states, num_latents)
        kept = prompt_state.rows(torch.arange(batch)) if keep_prompt_state else None
        call.resume(prompt_state)  # the run grows this state's cache: the state is used up
        first = prompt_state.step
        done = (prompt_state.latents, prompt_state.inputs) if first else (None, None)
        h, prompt_state = prompt_state.last_hidden, kept

    # 2. latent steps (from the first one a resumed state has not run)
    latents, inputs = (list(done[0].unbind(1)), list(done[1].unbind(1))) if first else ([], [])
    for j in range(first, num_latents):
        latents.append(h)
        thought = prj(h)
        if latent_input_fn is not None:
            thought = latent_input_fn(j, thought)
            if thought.shape != h.shape:
                raise ValueError(f"latent_input_fn returned shape {tuple(thought.shape)}; expected {tuple(h.shape)}")
        inputs.append(thought)
        out = call(thought[:, None].to(dtype), mask.new_ones(batch, 1), [("latent", j, 1)], all_logits=False)
        h = out.hidden_states[-1][:, -1]

    # 3. <eot> + teacher-forced response, one call
    x = _as_rows(eot_embeds, batch, "eot_embeds", d).to(dtype)
    new_mask = mask.new_ones(batch, 1)
    parts = [("eot", 0, 1)]
    n_forced = 0 if response_ids is None else response_ids.shape[1]
    if n_forced:
        rmask = torch.ones_like(response_ids) if response_mask is None else response_mask.long()
        if max_new_tokens > 0 and not bool(rmask.all()):
            raise ValueError("to generate after a teacher-forced prefix, every row's prefix must have the same "
                             "length (response_mask all ones).")
        x = torch.cat([x, embed(response_ids)], dim=1)
        new_mask = torch.cat([new_mask, rmask], dim=1)
        parts.append(("response", 0, n_forced))
    out = call(x, new_mask, parts, all_logits=True)
    resp_ids = [response_ids] if n_forced else []
    resp_mask = [new_mask[:, 1:]] if n_forced else []
    logits = [out.logits[:, :n_forced]] if keep_logits and n_forced else []

    # 4. generation, one call per token
    if max_new_tokens > 0:
        _generate(call, embed, out.logits[:, -1], max_new_tokens, n_forced, resp_ids, resp_mask,
                  logits if keep_logits else None, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                  vocab_size=vocab_size, temperature=temperature, generator=generator)

    empty = torch.zeros(batch, 0, d, device=dev, dtype=h.dtype)
    return LatentRun(
        segments=call.segments,
        latents=torch.stack(latents, 1) if latents else empty,
        latent_inputs=torch.stack(inputs, 1) if inputs else empty,
        response_ids=torch.cat(resp_ids, 1) if resp_ids else prompt_ids.new_zeros(batch, 0),
        response_mask=torch.cat(resp_mask, 1) if resp_mask else prompt_mask.new_zeros(batch, 0).long(),
        logits=torch.cat(logits, 1) if logits else None,
        hidden_states=call.hidden if keep_hidden_states else None,
        attention_mask=call.mask,
        n_forced=n_forced,
        prompt_state=prompt_state,
        last_hidden=h,
        cache=call.cache if keep_prompt_state else None,
    )


def _prompt_call(call: _Caller, embed, prompt_ids: Tensor, mask: Tensor, bot_embeds: Tensor | None,
                 keep: bool) -> tuple[Tensor, PromptState | None]:
    """Call 0: the prompt (+ <bot>). Returns the last-layer hidden at the last position and, with `keep`, the
    prompt state (a copy of the cache, before later calls grow it)."""
    batch, d = prompt_ids.shape[0], embed.weight.shape[1]
    x = embed(prompt_ids)
    if bot_embeds is not None:
        x = torch.cat([x, _as_rows(bot_embeds, batch, "bot_embeds", d).to(x.dtype)], dim=1)
    out = call(x, mask, [("prompt", 0, x.shape[1])], all_logits=False)
    h = out.hidden_states[-1][:, -1]
    return h, (PromptState(prompt_ids, mask, detached_copy(call.cache), h.detach().clone()) if keep else None)
