"""Where a run of the latent loop can be resumed: the state before a latent step, handed back as `prompt_state=`.

Everything after latent step j-1 depends on what came before only through the KV cache of those calls and the
last-layer hidden state from which thought j is made. A `PromptState` holds both (plus the thoughts already
made), so a later run of the same prompts can start at step j instead of recomputing calls 0..j: step 0 is the
state right after the prompt call (`codi.loop`'s prompt reuse); step j > 0 is cut from a finished run's cache
(`codi.loop.LatentRun.state_at`), which interventions use to start each replicated pass at the first call its
edits touch. `check_state` refuses a state made from other prompts or already used.

    >>> import torch
    >>> from basemodels import load_model
    >>> from codi.loop import latent_loop
    >>> m = load_model("tiny-llama"); d = m.d_model
    >>> ids, mask = torch.tensor([[0, 5, 6], [7, 8, 9]]), torch.tensor([[0, 1, 1], [1, 1, 1]])
    >>> kw = dict(prj=torch.nn.Identity(), num_latents=3, eot_embeds=torch.zeros(d), bot_embeds=torch.zeros(d),
    ...           response_ids=torch.tensor([[3, 4], [3, 4]]))
    >>> full = latent_loop(m.model, ids, mask, keep_prompt_state=True, **kw)
    >>> seen = []
    >>> late = latent_loop(m.model, ids, mask, prompt_state=full.state_at(2), on_call=seen.append, **kw)
    >>> seen                                   # calls 0-2 (prompt, thoughts 0 and 1) come from the state
    [3, 4]
    >>> torch.equal(late.logits, full.logits), torch.equal(late.latents, full.latents)
    (True, True)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformers.cache_utils import DynamicLayer

__all__ = ["PromptState", "check_state", "cut_state", "detached_copy"]


@dataclass
class PromptState:
    """The loop's state right before latent step `step`; hand it back as `prompt_state=` to skip calls 0..step.

    `ids` [batch, p]: the prompt ids it was made from (checked on reuse); `mask` [batch, p (+1 for <bot>) + step]:
    the attention mask of every call so far; `cache`: the KV cache after them (a Hugging Face Cache, a private
    copy); `last_hidden` [batch, d]: the last-layer hidden state at the last position, from which thought `step`
    is made; `latents` / `inputs` [batch, step, d]: the hidden states and fed-back thoughts of the steps already
    run (`LatentRun.latents` / `latent_inputs`). Step 0 is what the prompt call (call 0) leaves. A run that
    reuses a state grows its cache, so each state serves one run: `rows` makes fresh copies.

    >>> from basemodels import load_model
    >>> from codi.loop import latent_loop
    >>> m = load_model("tiny-gpt2"); d = m.d_model
    >>> ids, mask = torch.tensor([[0, 5, 6], [7, 8, 9]]), torch.tensor([[0, 1, 1], [1, 1, 1]])
    >>> full = latent_loop(m.model, ids, mask, prj=torch.nn.Identity(), num_latents=3, eot_embeds=torch.zeros(d),
    ...                    bot_embeds=torch.zeros(d), keep_prompt_state=True)
    >>> seen = []
    >>> again = latent_loop(m.model, ids, mask, prj=torch.nn.Identity(), num_latents=3, eot_embeds=torch.zeros(d),
    ...                     bot_embeds=torch.zeros(d), prompt_state=full.prompt_state.rows(torch.arange(2)),
    ...                     on_call=seen.append)
    >>> seen, [s.call for s in again.segments] == [s.call for s in full.segments]
    ([1, 2, 3, 4], True)
    >>> torch.equal(again.latents, full.latents)
    True
    """

    ids: Int[Tensor, "batch p"]
    mask: Int[Tensor, "batch p_bot_step"]
    cache: Any
    last_hidden: Float[Tensor, "batch d"]
    step: int = 0
    latents: Float[Tensor, "batch step d"] | None = None
    inputs: Float[Tensor, "batch step d"] | None = None

    def rows(self, index: Int[Tensor, " rows"]) -> PromptState:
        """The state of prompts `index` (e.g. `torch.arange(b).repeat(r)`: r replicas of a batch of b), with a
        fresh copy of the cache (a run grows the cache it is given).

        >>> from basemodels import load_model
        >>> from codi.loop import latent_loop
        >>> m = load_model("tiny-gpt2"); d = m.d_model
        >>> s = latent_loop(m.model, torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), prj=torch.nn.Identity(),
        ...                 num_latents=1, eot_embeds=torch.zeros(d), keep_prompt_state=True).prompt_state
        >>> s.rows(torch.tensor([0, 0, 0])).last_hidden.shape
        torch.Size([3, 64])
        """
        index = index.to(self.last_hidden.device)
        cache = copy.deepcopy(self.cache)
        cache.batch_select_indices(index)
        latents = None if self.latents is None else self.latents[index]
        inputs = None if self.inputs is None else self.inputs[index]
        return PromptState(self.ids[index.to(self.ids.device)], self.mask[index.to(self.mask.device)], cache,
                           self.last_hidden[index], self.step, latents, inputs)


def detached_copy(cache: Any) -> Any:
    """A deep copy of a KV cache whose tensors are detached clones (a cache made with gradients on holds tensors
    that `copy.deepcopy` refuses to copy).

    >>> from transformers import DynamicCache
    >>> c = DynamicCache()
    >>> k = torch.ones(1, 1, 2, 4, requires_grad=True) * 2
    >>> _ = c.update(k, k, 0)
    >>> c2 = detached_copy(c)
    >>> c2.layers[0].keys.requires_grad, c2.get_seq_length()
    (False, 2)
    """
    memo: dict[int, Any] = {}

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, Tensor):
            memo[id(obj)] = obj.detach().clone()
        elif depth < 6:
            items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else \
                vars(obj).values() if hasattr(obj, "__dict__") else ()
            for v in items:
                walk(v, depth + 1)

    walk(cache, 0)
    return copy.deepcopy(cache, memo)


def cut_state(ids: Tensor, cache: Any, mask: Tensor, latents: Tensor, inputs: Tensor, last_hidden: Tensor,
              prompt_len: int, step: int) -> PromptState | None:
    """The state before latent step `step` of a finished run, cut from its final `cache` (a private copy) and
    full `mask`; `prompt_len` = columns of the prompt call. None when the cache cannot be cut: only plain
    Hugging Face `DynamicLayer`s (which keep every position) can; sliding-window layers keep only the last window.

    >>> from basemodels import load_model
    >>> from codi.loop import latent_loop
    >>> m = load_model("tiny-llama"); d = m.d_model
    >>> run = latent_loop(m.model, torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), prj=torch.nn.Identity(),
    ...                   num_latents=3, eot_embeds=torch.zeros(d), keep_prompt_state=True)
    >>> s = run.state_at(2)                        # state_at calls cut_state on the run's own cache
    >>> s.step, s.cache.get_seq_length(), tuple(s.latents.shape), torch.equal(s.last_hidden, run.latents[:, 2])
    (2, 4, (1, 2, 64), True)
    """
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    keep = prompt_len + step
    cut = detached_copy(cache)
    total = cut.get_seq_length()
    if total < keep:
        raise ValueError(f"step={step}: the run's cache holds {total} positions, fewer than the {keep} before it.")
    for layer in cut.layers:
        if layer.is_initialized and layer.keys.numel():
            layer.keys, layer.values = layer.keys[..., :keep, :].contiguous(), layer.values[..., :keep, :].contiguous()
    h = latents[:, step] if step < latents.shape[1] else last_hidden
    return PromptState(ids, mask[:, :keep], cut, h.detach().clone(), step, latents[:, :step].detach().clone(),
                       inputs[:, :step].detach().clone())


def check_state(state: PromptState, prompt_ids: Tensor, mask: Tensor, keep_hidden_states: bool,
                num_latents: int) -> None:
    """A state fits only the prompts it was made from (or rows of them), unused, and a loop of >= `state.step`
    thoughts; `mask` is the prompt call's mask (prompt + <bot>).

    >>> s = PromptState(torch.tensor([[5]]), torch.ones(1, 2, dtype=torch.long), None, torch.zeros(1, 4), step=1)
    >>> try:
    ...     check_state(s, torch.tensor([[6]]), torch.ones(1, 1, dtype=torch.long), False, 2)
    ... except ValueError as e:
    ...     print(str(e)[:44])
    prompt_state was made from other prompts (id
    """
    if keep_hidden_states:
        raise ValueError("keep_hidden_states=True needs the hidden states of the calls a reused state skips, which it "
                         "does not keep; run without prompt_state=.")
    p = mask.shape[1]
    if state.ids.shape != prompt_ids.shape or state.mask.shape[1] != p + state.step or \
            state.mask.shape[0] != mask.shape[0] or not torch.equal(state.ids, prompt_ids.to(state.ids.device)) or \
            not torch.equal(state.mask[:, :p], mask.to(state.mask.device)):
        raise ValueError(f"prompt_state was made from other prompts (ids {tuple(state.ids.shape)}, mask "
                         f"{tuple(state.mask.shape)}) than these ({tuple(prompt_ids.shape)}, {tuple(mask.shape)}): "
                         "hand a state back only to a run of the same prompts (state.rows(index) for replicas).")
    if state.step > num_latents:
        raise ValueError(f"prompt_state is the state before latent step {state.step}, but this run has only "
                         f"num_latents={num_latents} steps: resume a run of at least {state.step} thoughts.")
    if state.cache.get_seq_length() != state.mask.shape[1]:
        raise ValueError(f"prompt_state's cache holds {state.cache.get_seq_length()} positions but the calls before "
                         f"it had {state.mask.shape[1]}: the state was already used by a run, which grows the cache. "
                         "Hand each run its own copy: state.rows(torch.arange(batch)).")
