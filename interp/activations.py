"""`ActivationCache`, the residual stream `[sample, layer, position, d]` with its labels, sample table and
metadata, and the pieces both cache paths share (plain `interp/cache.py`, CODI `interp/codi_cache.py`): the config
hash, gathering a Plan's cells from recordings, the device -> host copy, the store dtype, and opening a store.

    >>> import interp
    >>> c = interp.cache(interp.load_model("tiny-llama"), ["Hi"], layers=[1])
    >>> type(c).__module__
    'interp.activations'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interp import positions as pos
from interp import store
from interp.hooks import Recording

__all__ = ["ActivationCache", "load_cache", "config_hash", "gather_plan", "ToHost", "store_dtype"]

_VOLATILE_CONFIG = {"transformers_version", "dtype", "torch_dtype", "attn_implementation", "output_attentions",
                    "output_hidden_states", "use_cache", "return_dict", "architectures"}

class ActivationCache:
    """Residual stream `[sample, layer, position, d]` with labels, the sample table and metadata.

    Numpy results are always float32 (bf16 stored values are widened); arrays of a cache loaded from disk are
    memory-mapped shards and only the selected cells are read.

    >>> c = interp.cache(interp.load_model("tiny-llama"), ["The capital of France is", "Hi"])
    >>> c.layers, c.positions[:2], c.valid.shape        # positions: the union tok_0..tok_9 of both prompts
    ([0, 1, 2], ['tok_0', 'tok_1'], (2, 10))
    >>> c.sel(layer=1, position="last").shape           # alias resolved per sample from the valid mask
    (2, 64)
    """

    def __init__(self, layers: list[int], positions: list[str], samples: pd.DataFrame, meta: dict,
                 parts: list[store.Part], folder: Path | None = None):
        self.layers, self.positions, self.samples, self.meta = list(layers), list(positions), samples, meta
        self.parts, self.folder = parts, folder
        self.valid: Bool[np.ndarray, "sample pos"] = np.concatenate([np.asarray(p.valid) for p in parts])
        self._starts = np.cumsum([0] + [p.n for p in parts])
        self.extras: dict[str, np.ndarray] = {}  # CODI caches: latent_pre_prj / latent_post_prj [sample, k, d], ...
        self.source_model = None  # set by the CODI cache: the model whose unembedding interp.lens uses

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __repr__(self) -> str:
        return (f"ActivationCache({self.meta.get('model')!r}, samples={len(self)}, layers={self.layers}, "
                f"positions={len(self.positions)}, d_model={self.meta.get('d_model')}, dtype={self.meta.get('dtype')}"
                f"{', folder=' + repr(str(self.folder)) if self.folder else ''})")

    @property
    def labels(self) -> np.ndarray:
        return self._column("label")

    @property
    def groups(self) -> np.ndarray:
        return self._column("group")

    def _column(self, name: str) -> np.ndarray:
        if name not in self.samples.columns:
            raise KeyError(f"the samples have no {name!r} column (columns: {list(self.samples.columns)}); pass "
                           f"prompts as dicts with a {name!r} key.")
        return self.samples[name].to_numpy()

    def _layer_index(self, layer: int) -> int:
        if layer not in self.layers:
            raise ValueError(f"layer {layer} is not in this cache (layers {self.layers}).")
        return self.layers.index(layer)

    def _pos_index(self, label: str | int) -> int:
        label = f"tok_{label}" if isinstance(label, (int, np.integer)) else label
        if label not in self.positions:
            raise ValueError(f"position {label!r} is not stored in this cache; it holds {pos._short(self.positions)}."
                             " Aliases like 'last' work only in sel().")
        return self.positions.index(label)

    def sel(self, layer: int, position: str | int, allow_missing: bool = False) -> Float[np.ndarray, "sample d"]:
        """float32 `[sample, d]` at one layer and one position label (or alias: `last`, `prompt[-k]`, `q[-k]`).
        Samples without that position raise, unless `allow_missing=True` (their rows are zeros)."""
        li = self._layer_index(layer)
        label = f"tok_{position}" if isinstance(position, (int, np.integer)) else position
        cols, found = pos.resolve_alias(label, self.positions, self.valid)
        if not found.all() and not allow_missing:
            missing = np.flatnonzero(~found)
            raise ValueError(f"{len(missing)} samples (e.g. rows {missing[:5].tolist()}) have no position "
                             f"{label!r}; pass allow_missing=True to get zeros there, or check cache.valid.")
        out = []
        for p, lo in zip(self.parts, self._starts):
            rows = np.arange(p.n)
            out.append(p.take((rows, li, cols[lo:lo + p.n])))
        res = np.concatenate(out) if len(out) > 1 else out[0]
        return np.where(found[:, None], res, np.float32(0)).astype(np.float32, copy=False)

    def array(self, layers: Sequence[int] | None = None, positions: Sequence[str | int] | None = None
              ) -> Float[np.ndarray, "sample layer pos d"]:
        """float32 `[sample, layer, position, d]`. With no selection on a one-shard float32 cache loaded from
        disk this is the memory map itself; otherwise only the selected cells are read into memory."""
        li = slice(None) if layers is None else [self._layer_index(x) for x in layers]
        pi = slice(None) if positions is None else [self._pos_index(x) for x in positions]
        index = (slice(None), li, pi) if isinstance(li, slice) or isinstance(pi, slice) else (
            slice(None), np.array(li)[:, None], np.array(pi)[None, :])
        out = [p.take(index) for p in self.parts]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def summary(self, show: bool = True) -> str:
        """Shape, valid cells, latent views and the identity check (`interp.identity`); printed and returned.

        >>> c.summary()          # warns when positions hold identical activations across labels
        """
        from interp.identity import summary_text

        lines = [repr(self), f"valid cells: {int(self.valid.sum())} of {self.valid.size}"]
        if self.extras:
            lines.append("extras: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.extras.items()))
        lines.append(summary_text(self))
        text = "\n".join(lines)
        if show:
            print(text)
        return text

    def iter_parts(self) -> Iterator[tuple[Int[np.ndarray, " rows"], Float[np.ndarray, "rows layer pos d"]]]:
        """(row indices, float32 block) per shard: stream a big cache without loading it whole."""
        for p, lo in zip(self.parts, self._starts):
            yield np.arange(lo, lo + p.n), p.take(slice(None))


def config_hash(model: torch.nn.Module) -> str:
    """Hash of the model config without run-time switches (attention kernel, dtype, output flags)."""
    cfg = {k: v for k, v in model.config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE_CONFIG}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def gather_plan(rec: Recording, plan: pos.Plan) -> Float[Tensor, "batch layer pos d"]:
    """Cells of a Plan from full per-call recordings (on the recording's device): out[b, l, p] =
    rec.residuals[layer_l][plan.call[p]][b, plan.col[b, p]]."""
    first = rec.residuals[rec.layers[0]][0]
    b, d = first.shape[0], first.shape[-1]
    out = first.new_zeros((b, len(rec.layers), len(plan.labels), d))
    rows = torch.arange(b, device=first.device)[:, None]
    calls = torch.tensor(plan.call)
    for c in sorted(set(plan.call)):
        idx = torch.nonzero(calls == c).flatten()
        col = plan.col[:, idx].to(first.device)
        for li, layer in enumerate(rec.layers):
            out[:, li, idx.to(first.device)] = rec.residuals[layer][c][rows, col]
    return out


class ToHost:
    """Device -> host copies. On CUDA: a side stream copies into two pinned staging buffers while the next batch
    computes; `push` returns the batches whose copies are done (at most one is in flight). On CPU: pass-through."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pending: list[tuple[Tensor, Tensor, Any]] = []
        self.bufs: list[Tensor | None] = [None, None]
        self.k = 0
        if self.cuda:
            self.stream = torch.cuda.Stream(device)

    def push(self, x: Tensor, valid: Tensor) -> list[tuple[Tensor, Tensor]]:
        if not self.cuda:
            return [(x, valid)]
        slot = self.k % 2
        self.k += 1
        if self.bufs[slot] is None or self.bufs[slot].shape[1:] != x.shape[1:] or len(self.bufs[slot]) < len(x):
            self.bufs[slot] = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        view = self.bufs[slot][:len(x)]
        self.stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(self.stream):
            view.copy_(x, non_blocking=True)
            x.record_stream(self.stream)
            event = torch.cuda.Event()
            event.record(self.stream)
        self.pending.append((view, valid, event))
        return self._ready(keep=1)

    def flush(self) -> list[tuple[Tensor, Tensor]]:
        return self._ready(keep=0)

    def _ready(self, keep: int) -> list[tuple[Tensor, Tensor]]:
        out = []
        while len(self.pending) > keep:
            view, valid, event = self.pending.pop(0)
            event.synchronize()
            out.append((view, valid))
        return out


def store_dtype(dtype: str | torch.dtype | None, model: torch.nn.Module) -> torch.dtype:
    """The dtype a store keeps: `dtype` if given (float32, bfloat16, float16), else the model's bf16/fp16, else
    float32."""
    if dtype is None:
        model_dtype = next(model.parameters()).dtype
        return model_dtype if model_dtype in (torch.bfloat16, torch.float16) else torch.float32
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if dt not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype={dtype!r}: store float32, bfloat16 or float16.")
    return dt


def load_cache(folder: str | os.PathLike) -> ActivationCache:
    """Open a cache folder written by `cache(..., out=folder)`; the arrays are memory-mapped, not read.

    >>> c = load_cache("runs/c")
    >>> c.sel(layer=1, position="last").dtype
    dtype('float32')
    """
    meta = store.read_meta(folder)
    parts = store.open_parts(folder, meta)
    c = ActivationCache(layers=meta["layers"], positions=meta["positions"], samples=store.read_samples(folder),
                        meta=meta, parts=parts, folder=Path(folder))
    c.extras = store.load_extras(folder)
    return c
