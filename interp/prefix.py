"""Share the prompt call of the CODI latent loop across the replicas of a batched intervention sweep.

An intervention at a latent, <eot> or response cell leaves the prompt call (question + <bot>) untouched, yet a
replicated batch would recompute it for every replica; the prompt is most of the tokens. `PromptShare` wraps
the base HF model for one latent-loop run: in "capture" mode it keeps a copy of the prompt call's KV cache and
last hidden state, in "replay" mode it answers the prompt call from that copy, tiled to the replicated batch,
and passes every later call to the real model (so the hooks of `interp.hooks` still see them, numbered from 0
at the first latent step instead of the prompt). The latent loop itself is untouched: `run_ids` drives it
through a thin proxy of the CODI runner whose `.model` is the wrapper.

    >>> share = PromptShare(cm.model)                                     # capture
    >>> run = run_ids_with(cm, share, ids, mask, r_ids, r_mask)
    >>> rows = torch.arange(4).repeat(8)                                  # 8 replicas of 4 rows
    >>> replay = PromptShare(cm.model, saved=share.saved, rows=rows)
    >>> tiled = [t.repeat(8, 1) for t in (ids, mask, r_ids, r_mask)]
    >>> run8 = run_ids_with(cm, replay, *tiled)
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

from jaxtyping import Int
from torch import Tensor

__all__ = ["PromptShare", "run_ids_with"]


class PromptShare:
    """The base model with its first (prompt) call captured or replayed; see the module docstring."""

    def __init__(self, model, saved: tuple | None = None, rows: Int[Tensor, " rows"] | None = None):
        self.model, self.saved, self.rows = model, saved, rows
        self.calls = 0
        self.replayed = False

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def __call__(self, **kwargs):
        first = self.calls == 0
        self.calls += 1
        if first and self.saved is not None:
            cache, last = self.saved
            cache = copy.deepcopy(cache)
            cache.batch_select_indices(self.rows.to(last.device))
            self.replayed = True
            return SimpleNamespace(
                past_key_values=cache, hidden_states=(last[self.rows.to(last.device)],), logits=None
            )
        out = self.model(**kwargs)
        if first:
            self.saved = (copy.deepcopy(out.past_key_values), out.hidden_states[-1][:, -1:].clone())
        return out


class _Runner:
    """A CODI runner whose `.model` is replaced (everything else is the runner's own)."""

    def __init__(self, runner, model):
        self._runner, self.model = runner, model

    def __getattr__(self, name):
        return getattr(self._runner, name)


def run_ids_with(runner, model, *args, **kwargs):
    """`runner.run_ids(*args, **kwargs)` with the base model replaced by `model` (e.g. a PromptShare)."""
    return type(runner).run_ids(_Runner(runner, model), *args, **kwargs)
