"""`interp.cache`: the residual stream at chosen layers and positions, in memory or streamed to disk.

    >>> import interp, tempfile
    >>> m = interp.load_model("tiny-llama")
    >>> c = interp.cache(m, ["The capital of France is", "Hi"], layers=[0, 2], positions=["tok_0", "last"],
    ...                  progress=False)
    >>> c.sel(layer=2, position="last").shape          # float32 [sample, d_model]
    (2, 64)
    >>> out = tempfile.mkdtemp() + "/c"
    >>> c = interp.cache(m, ["The capital of France is"], out=out, progress=False)   # streamed, resumable
    >>> interp.load_cache(out).array().shape                                         # memory-mapped
    (1, 3, 10, 64)

`cache` checks every argument (before any work and before anything is written), then hands a batch source to the
one driver, `interp.driver.run`, which does everything after the forward pass (store dtype, host copy, memory or
store, resume, several processes under `accelerate launch`). Two sources exist: `_Plain` here, and the CODI latent
run in `interp.codi_cache` (CODI models are dispatched there).

How one batch of a plain model is recorded (`_Plain.batch`): pad (left or right, as the tokenizer says), pass
position ids `cumsum(mask) - 1` so padding never shifts a sample, build the batch's `positions.plain_plan` and record
the requested layers with `interp.hooks` (the Plan's columns selected on the device inside the hook, forward stopped
after the last requested layer), zero the cells a sample does not have.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

import argcheck
from basemodels.facts import ModelFacts, facts, is_codi, pad_id
from interp import driver
from interp import positions as pos
from interp.activations import ActivationCache, load_cache
from interp.cache_args import check_layers, check_prompts, check_run_args, plain_labels
from interp.hooks import record_residuals
from interp.models import Model, load_model

__all__ = ["cache", "load_cache", "ActivationCache"]


def _target(model: Any, tokenizer: Any) -> ModelFacts:
    """The facts (HF module, tokenizer, name, sizes, pad id) of what the user passed."""
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if isinstance(model, Model):
        return facts(model, tokenizer)
    if isinstance(model, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("a raw Hugging Face model needs its tokenizer: interp.cache(model, prompts, "
                             "tokenizer=tok), or pass interp.load_model(...) which carries it.")
        return facts(model, tokenizer)
    raise TypeError(f"cannot cache {type(model).__name__}: pass an interp.Model, a registry name, or a Hugging "
                    "Face model with tokenizer=.")


def _samples(prompts: Any) -> pd.DataFrame:
    """Prompts -> sample table with at least `id` and `text` (validates every prompt)."""
    prompts = check_prompts(prompts)
    if isinstance(prompts, pd.DataFrame):
        if "text" not in prompts.columns:
            raise argcheck.BadArgument("prompts", prompts, f"the prompt table needs a 'text' column (it has "
                                       f"{list(prompts.columns)})", "add a 'text' column", shown="DataFrame")
        rows = prompts.to_dict(orient="records")
    else:
        rows = [p if isinstance(p, dict) else {"text": p} for p in list(prompts)]
    for i, r in enumerate(rows):
        if "text" not in r:
            raise argcheck.BadArgument(f"prompts[{i}]", r, f"prompt {i} is a dict without a 'text' key (keys: "
                                       f"{sorted(r)})", "give every dict a string 'text'")
        if not isinstance(r["text"], str):
            raise argcheck.BadArgument(f"prompts[{i}]", r["text"], f"prompt {i} is a {type(r['text']).__name__} "
                                       f"({r['text']!r}), not a string",
                                       "pass prompts as strings or dicts with a string 'text'")
    df = pd.DataFrame(rows)
    if "id" not in df.columns:
        df.insert(0, "id", [str(i) for i in range(len(df))])
    return df[["id", "text", *[c for c in df.columns if c not in ("id", "text")]]]


class _Plain:
    """The batch source of a plain model (see the module docstring)."""

    extra_keys: tuple[str, ...] = ()

    def __init__(self, model: torch.nn.Module, tokenizer: Any, name: str, ids: list[list[int]], samples: pd.DataFrame,
                 layers: list[int], labels: list[str], side: str, meta: dict):
        self.model, self.tokenizer, self.name, self.ids, self.samples = model, tokenizer, name, ids, samples
        self.layers, self.labels, self.side, self.meta = layers, labels, side, meta
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.pad_id = pad_id(tokenizer)

    def _pad(self, ids: list[list[int]]) -> tuple[Tensor, Tensor]:
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for b, x in enumerate(ids):
            sl = slice(width - len(x), width) if self.side == "left" else slice(0, len(x))
            input_ids[b, sl] = torch.tensor(x)
            mask[b, sl] = 1
        return input_ids, mask

    def batch(self, lo: int, hi: int) -> driver.Batch:
        chunk = self.ids[lo:hi]
        input_ids, mask = self._pad(chunk)
        plan = pos.plain_plan(self.labels, [len(x) for x in chunk], input_ids.shape[1], self.side)
        cells = pos.gather_indices(plan, self.device)[0]  # one forward call: its columns, selected in the hook
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            with record_residuals(self.model, self.layers, select=cells.col, stop=True) as rec:
                self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                           position_ids=position_ids.to(self.device), use_cache=False)
            resid = rec.stacked(0).masked_fill_(~plan.valid.to(self.device)[:, None, :, None], 0)
        return driver.Batch(resid, plan.valid)

    def sample_columns(self, extras) -> dict[str, list]:
        return {}


def _tokenize(f: ModelFacts, texts: Sequence[str]) -> list[list[int]]:
    ids = [list(x) for x in f.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    limit, name = f.context_length, f.name
    for i, x in enumerate(ids):
        if not x:
            raise argcheck.BadArgument(f"prompts[{i}]", texts[i], f"prompt {i} ({texts[i]!r}) has no tokens",
                                       "remove it or give it text")
        if limit is not None and len(x) > limit:
            raise argcheck.BadArgument(f"prompts[{i}]", texts[i], f"prompt {i} has {len(x)} tokens but {name} takes "
                                       f"at most {limit}", "shorten it or split it")
    return ids


def cache(model: Any, prompts: Any, layers: str | int | Sequence[int] = "all",
          positions: str | int | Sequence[str | int] = "all", batch_size: int = 16,
          out: str | os.PathLike | None = None,
          *, tokenizer: Any = None, dtype: str | torch.dtype | None = None, padding_side: str | None = None,
          shard_size: int | None = None, progress: bool = True, responses: Sequence[str] | None = None,
          generate: bool = False, max_new_tokens: int = 16, template: Any = None) -> ActivationCache:
    """Cache the residual stream of `model` on `prompts` at `layers` (0..n_layers) and `positions` (labels).

    model: an `interp.Model`, a registry name, or a Hugging Face causal LM with `tokenizer=`.
    prompts: list of strings, list of dicts with "text" (+ label, group, id, extra columns), a DataFrame with a
      "text" column, or a task object with `.samples`; one string is one prompt.
    layers: "all" or ints in 0..n_layers. positions: "all" (tok_0..tok_{max_len-1}) or labels such as
      ["tok_0", "last", "prompt[-2]"]. dtype: stored dtype (default: the model's bf16/fp16, else float32).
    out: a folder to stream shards to (resumable; a finished cache with the same settings is just reopened).
      Under `accelerate launch` the processes split the batches and write this one store (`interp.ranks`).
    CODI models (codi.CODIModel / MergedCODI) are recorded through their latent loop (interp.codi_cache): positions
      q_*, bot, latent_*, eot, resp_*; `responses=` (teacher forced), `generate=True` + `max_new_tokens`,
      `template=` (interp.templates.Template); both views of each thought land in `cache.extras`.
    Every argument is checked before any work starts and before anything is written (`argcheck.BadArgument`).

    >>> import interp
    >>> c = cache(interp.load_model("tiny-gpt2"), ["a b c", "hello"], layers=[1], positions=["last"], progress=False)
    >>> c.array().shape                                  # [sample, layer, position, d]
    (2, 1, 1, 64)
    """
    from interp.codi_cache import codi_cache

    if is_codi(model):  # CODI runs: q_*, bot, latent_*, eot, resp_* (interp.codi_cache)
        return codi_cache(model, prompts, layers, positions, batch_size, out, responses=responses, generate=generate,
                          max_new_tokens=max_new_tokens, template=template, dtype=dtype, progress=progress,
                          tokenizer=tokenizer, padding_side=padding_side, shard_size=shard_size)
    check_run_args(batch_size, out, dtype, shard_size)
    if padding_side is not None:
        argcheck.check_choice("padding_side", padding_side, ["left", "right"],
                              fix="pass 'left' or 'right', or leave it out (the tokenizer's)")
    prompts = check_prompts(prompts)
    labels = plain_labels(positions, None)  # syntax checked before the model loads and before tokenizing
    if responses is not None or generate:
        raise ValueError("responses= and generate= apply to CODI models (codi.CODIModel / MergedCODI). For a plain "
                         "model put the response into the prompt text, or use template=Template(response=...).")
    f = _target(model, tokenizer)
    hf, tok, name = f.module, f.tokenizer, f.name
    layer_list = check_layers(layers, f.n_layers)
    if template is not None:
        from interp.templates import plain_records

        prompts = plain_records(template, prompts, tok)
    samples = _samples(prompts)
    side = padding_side or getattr(tok, "padding_side", "right") or "right"
    ids = _tokenize(f, samples["text"].tolist())
    labels = labels or plain_labels("all", [len(x) for x in ids])
    meta = dict(model=name, n_layers=f.n_layers, d_model=f.d_model, config_hash=driver.config_hash(hf),
                padding_side=side, codi=None)
    source = _Plain(hf, tok, name, ids, samples, layer_list, labels, side, meta)
    return driver.run(source, batch_size=batch_size, out=out, dtype=dtype, shard_size=shard_size, progress=progress)
