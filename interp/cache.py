"""`interp.cache`: the residual stream at chosen layers and positions, in memory or streamed to disk.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> c = interp.cache(m, ["The capital of France is", "Hi"], layers=[0, 2], positions=["tok_0", "last"])
    >>> c.sel(layer=2, position="last").shape          # float32 [sample, d_model]
    (2, 64)
    >>> c = interp.cache(m, ["The capital of France is"], out="runs/c")   # streamed, resumable
    >>> c = interp.load_cache("runs/c")                                 # memory-mapped

How one batch is cached (plain models): pad (left or right, as the tokenizer says), pass position ids
`cumsum(mask) - 1` so padding never shifts a sample, record the requested layers with `interp.hooks` (columns
selected on the device inside the hook, forward stopped after the last requested layer), zero the cells a sample
does not have, cast to the store dtype and copy to the host (pinned staging buffers and a side stream on CUDA).

Extension point for CODI runs: a batch source yields `(resid [batch, layer, pos, d] on device, valid [batch, pos])`.
`_plain_batches` is the source for plain models. The CODI source runs `codi.loop.latent_loop` under
`record_residuals(model, layers)` (no select, no stop: the loop needs every call), builds a `positions.Plan` from
the run's Segment list and calls `gather_plan(recording, plan)`; everything after that (host copy, store) is shared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from interp import positions as pos
from interp import store
from interp.activations import ActivationCache, ToHost, config_hash, gather_plan, load_cache, store_dtype
from interp.hooks import _check_layers, n_layers_of, record_residuals
from interp.models import Model, load_model

__all__ = ["cache", "load_cache", "ActivationCache", "gather_plan"]



@dataclass
class _Target:
    model: torch.nn.Module
    tokenizer: Any
    name: str
    n_layers: int
    d_model: int


def _target(model: Any, tokenizer: Any) -> _Target:
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if isinstance(model, Model):
        return _Target(model.model, tokenizer or model.tokenizer, model.name, model.n_layers, model.d_model)
    if isinstance(model, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("a raw Hugging Face model needs its tokenizer: interp.cache(model, prompts, "
                             "tokenizer=tok), or pass interp.load_model(...) which carries it.")
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        return _Target(model, tokenizer, str(name), n_layers_of(model), int(cfg.hidden_size))
    raise TypeError(f"cannot cache {type(model).__name__}: pass an interp.Model, a registry name, or a Hugging "
                    "Face model with tokenizer=.")


def _samples(prompts: Any) -> pd.DataFrame:
    """Prompts -> sample table with at least `id` and `text` (validates every prompt)."""
    if hasattr(prompts, "samples") and not isinstance(prompts, pd.DataFrame):
        prompts = prompts.samples
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(prompts, pd.DataFrame):
        if "text" not in prompts.columns:
            raise ValueError(f"the prompt table needs a 'text' column (it has {list(prompts.columns)}).")
        rows = prompts.to_dict(orient="records")
    else:
        rows = [p if isinstance(p, dict) else {"text": p} for p in list(prompts)]
    if not rows:
        raise ValueError("the prompt list is empty; pass at least one prompt string.")
    for i, r in enumerate(rows):
        if "text" not in r:
            raise ValueError(f"prompt {i} is a dict without a 'text' key (keys: {sorted(r)}).")
        if not isinstance(r["text"], str):
            raise TypeError(f"prompt {i} is a {type(r['text']).__name__} ({r['text']!r}), not a string; pass "
                            f"prompts as strings or dicts with a string 'text'.")
    df = pd.DataFrame(rows)
    if "id" not in df.columns:
        df.insert(0, "id", [str(i) for i in range(len(df))])
    return df[["id", "text", *[c for c in df.columns if c not in ("id", "text")]]]


def _context_length(model: torch.nn.Module) -> int | None:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    return None


def _tokenize(t: _Target, texts: Sequence[str]) -> list[list[int]]:
    ids = [list(x) for x in t.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    limit = _context_length(t.model)
    for i, x in enumerate(ids):
        if not x:
            raise ValueError(f"prompt {i} ({texts[i]!r}) has no tokens; remove it or give it text.")
        if limit is not None and len(x) > limit:
            raise ValueError(f"prompt {i} has {len(x)} tokens but {t.name} takes at most {limit}; shorten it or "
                             f"split it.")
    return ids


def _pad(ids: list[list[int]], pad_id: int, side: str) -> tuple[Tensor, Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for b, x in enumerate(ids):
        sl = slice(width - len(x), width) if side == "left" else slice(0, len(x))
        input_ids[b, sl] = torch.tensor(x)
        mask[b, sl] = 1
    return input_ids, mask


def _plain_batches(t: _Target, ids: list[list[int]], labels: list[str], layers: list[int], batch_size: int,
                   side: str, start: int) -> Iterator[tuple[Tensor, Tensor]]:
    device = next(t.model.parameters()).device
    pad_id = t.tokenizer.pad_token_id if t.tokenizer.pad_token_id is not None else 0
    for lo in range(start, len(ids), batch_size):
        chunk = ids[lo:lo + batch_size]
        input_ids, mask = _pad(chunk, pad_id, side)
        plan = pos.plain_plan(labels, [len(x) for x in chunk], input_ids.shape[1], side)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            with record_residuals(t.model, layers, select=plan.col.to(device), stop=True) as rec:
                t.model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                        position_ids=position_ids.to(device), use_cache=False)
            resid = rec.stacked(0).masked_fill_(~plan.valid.to(device)[:, None, :, None], 0)
        yield resid, plan.valid


def cache(model: Any, prompts: Any, layers: str | int | Sequence[int] = "all",
          positions: str | int | Sequence[str | int] = "all", batch_size: int = 16,
          out: str | os.PathLike | None = None,
          *, tokenizer: Any = None, dtype: str | torch.dtype | None = None, padding_side: str | None = None,
          shard_size: int | None = None, progress: bool = True, responses: Sequence[str] | None = None,
          generate: bool = False, max_new_tokens: int = 16, template: Any = None) -> ActivationCache:
    """Cache the residual stream of `model` on `prompts` at `layers` (0..n_layers) and `positions` (labels).

    model: an `interp.Model`, a registry name, or a Hugging Face causal LM with `tokenizer=`.
    prompts: list of strings, list of dicts with "text" (+ label, group, id, extra columns), a DataFrame with a
      "text" column, or a task object with `.samples`.
    layers: "all" or ints in 0..n_layers. positions: "all" (tok_0..tok_{max_len-1}) or labels such as
      ["tok_0", "last", "prompt[-2]"]. dtype: stored dtype (default: the model's bf16/fp16, else float32).
    out: a folder to stream shards to (resumable; a finished cache with the same settings is just reopened).
    CODI models (codi.CODIModel / MergedCODI) are recorded through their latent loop (interp.codi_cache): positions
      q_*, bot, latent_*, eot, resp_*; `responses=` (teacher forced), `generate=True` + `max_new_tokens`,
      `template=` (interp.templates.Template); both views of each thought land in `cache.extras`.

    >>> c = cache(interp.load_model("tiny-gpt2"), ["a b c", "hello"], layers=[1], positions=["last"])
    >>> c.array().shape                                  # [sample, layer, position, d]
    (2, 1, 1, 64)
    """
    from interp.codi_cache import codi_cache, is_codi

    if is_codi(model):  # CODI runs: q_*, bot, latent_*, eot, resp_* (interp.codi_cache)
        return codi_cache(model, prompts, layers, positions, batch_size, out, responses=responses, generate=generate,
                          max_new_tokens=max_new_tokens, template=template, dtype=dtype, progress=progress,
                          tokenizer=tokenizer, padding_side=padding_side, shard_size=shard_size)
    if responses is not None or generate:
        raise ValueError("responses= and generate= apply to CODI models (codi.CODIModel / MergedCODI). For a plain "
                         "model put the response into the prompt text, or use template=Template(response=...).")
    t = _target(model, tokenizer)
    if template is not None:
        from interp.templates import plain_records

        prompts = plain_records(template, prompts, t.tokenizer)
    samples = _samples(prompts)
    layer_list = list(range(t.n_layers + 1)) if layers == "all" else _check_layers(
        [layers] if isinstance(layers, int) else list(layers), t.n_layers)
    side = padding_side or getattr(t.tokenizer, "padding_side", "right") or "right"
    if side not in ("left", "right"):
        raise ValueError(f"padding_side={side!r}: use 'left' or 'right'.")
    labels = pos.plain_labels(positions, [1]) if positions != "all" else None  # check labels before tokenizing
    ids = _tokenize(t, samples["text"].tolist())
    labels = labels or pos.plain_labels("all", [len(x) for x in ids])
    sdt = store_dtype(dtype, t.model)
    meta = dict(format=store.FORMAT, version=store.VERSION, model=t.name, n_layers=t.n_layers, d_model=t.d_model,
                config_hash=config_hash(t.model), model_dtype=str(next(t.model.parameters()).dtype).split(".")[-1],
                dtype=str(sdt).split(".")[-1], layers=layer_list, positions=labels, n_samples=len(samples),
                samples_hash=store.samples_hash(samples), padding_side=side, codi=None, shard_size=None)
    per_row = len(layer_list) * len(labels) * t.d_model * sdt.itemsize
    meta["shard_size"] = store.shard_rows(shard_size, per_row, batch_size)

    start, writer, dest = 0, None, None
    if out is not None:
        old = store.check_folder(out, meta)  # raises before anything is written
        if old is not None and old.get("complete"):
            return load_cache(out)
        writer = store.open_writer(out, meta, samples, meta["shard_size"])
        start = writer.start_row
    else:
        dest = torch.zeros((len(samples), len(layer_list), len(labels), t.d_model), dtype=sdt)
        valid_all = torch.zeros((len(samples), len(labels)), dtype=torch.bool)

    device = next(t.model.parameters()).device
    host = ToHost(device)
    row = start

    def consume(done: list[tuple[Tensor, Tensor]]) -> None:
        nonlocal row
        for x, v in done:
            if writer is not None:
                writer.add(x, v)
            else:
                dest[row:row + len(x)] = x
                valid_all[row:row + len(x)] = v
            row += len(x)

    n_batches = -(-(len(ids) - start) // batch_size)
    batches = _plain_batches(t, ids, labels, layer_list, batch_size, side, start)
    for resid, valid in tqdm(batches, total=n_batches, disable=not progress, desc=f"cache {t.name}", unit="batch"):
        consume(host.push(resid.to(sdt), valid))
    consume(host.flush())
    if writer is not None:
        writer.finish()
        return load_cache(out)
    return ActivationCache(layers=layer_list, positions=labels, samples=samples, meta={**meta, "complete": True},
                           parts=[store.Part(resid=dest, valid=valid_all.numpy(), stored=meta["dtype"])])
