"""The one cache driver: everything that follows a batch source's forward pass, written once.

A batch source (plain prompts in `interp.cache`, a CODI latent run in `interp.codi_cache`) knows its samples,
layers and position labels, and turns rows [lo, hi) into a `Batch`: residuals `[batch, layer, pos, d]` on the
device with the cells a sample lacks zeroed, the validity mask `[batch, pos]`, and per-sample extras (or None).
`run` does the rest: the store dtype and metadata, the resume check, the split over processes (`interp.ranks`),
the copy to the host (`ToHost`), the in-memory sink or the store writer (extras included), sample columns derived
from the extras, and the `ActivationCache` it returns.

Batches follow a fixed grid (batch k = rows [k*batch_size, (k+1)*batch_size)), also when a killed run resumes in the
middle of a batch (the shard size need not be a multiple of the batch size): the batch is recomputed whole and the
rows already stored are dropped, so a resumed store equals an uninterrupted one bit for bit.

    >>> import torch, pandas as pd
    >>> class Ramp:       # the smallest batch source: 3 samples, layer 0, one position, d_model 2
    ...     name, layers, labels, extra_keys = "ramp", [0], ["tok_0"], ()
    ...     device, dtype = torch.device("cpu"), torch.float32
    ...     samples = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "b", "c"]})
    ...     meta = dict(model="ramp", n_layers=0, d_model=2, config_hash="-", padding_side="left", codi=None)
    ...     def batch(self, lo, hi):
    ...         x = torch.arange(lo, hi, dtype=torch.float32)[:, None, None, None].expand(-1, 1, 1, 2)
    ...         return Batch(x, torch.ones(hi - lo, 1, dtype=torch.bool))
    ...     def sample_columns(self, extras):
    ...         return {}
    >>> run(Ramp(), batch_size=2, progress=False).sel(layer=0, position="tok_0")[:, 0].tolist()
    [0.0, 1.0, 2.0]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Float
from torch import Tensor
from tqdm.auto import tqdm

from interp import store
from interp.activations import ActivationCache, load_cache
from interp.cache_args import check_run_args, store_dtype
from interp.ranks import Ranks

__all__ = ["Batch", "BatchSource", "run", "config_hash", "ToHost"]

_VOLATILE_CONFIG = {"transformers_version", "dtype", "torch_dtype", "attn_implementation", "output_attentions",
                    "output_hidden_states", "use_cache", "return_dict", "architectures"}
_COMPLETE, _FAILED = -1, -2  # what process 0 tells the others after opening the store (else: the resume row)


@dataclass
class Batch:
    """What a batch source yields for rows [lo, hi).

    >>> b = Batch(torch.zeros(2, 1, 3, 4), torch.tensor([[True, True, False], [True, True, True]]))
    >>> tuple(b.resid.shape), b.valid.sum().item(), b.extras is None     # [batch, layer, pos, d]
    ((2, 1, 3, 4), 5, True)
    """

    resid: Float[Tensor, "batch layer pos d"]  # on the model's device; cells a sample lacks are zeros
    valid: Bool[Tensor, "batch pos"]
    extras: dict[str, Tensor] | None = None     # one [batch, ...] tensor per name in the source's extra_keys


class BatchSource(Protocol):
    """What `run` needs from a source (the plain prompts of `interp.cache`, the CODI run of `interp.codi_cache`).

    A source with one extra per sample (`extra_keys`), whose sample table gains a column derived from it:

    >>> class Squares:
    ...     name, layers, labels, extra_keys = "squares", [0], ["tok_0"], ("square",)
    ...     device, dtype = torch.device("cpu"), torch.float32
    ...     samples = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "b", "c"]})
    ...     meta = dict(model="squares", n_layers=0, d_model=1, config_hash="-", padding_side="left", codi=None)
    ...     def batch(self, lo, hi):
    ...         x = torch.arange(lo, hi, dtype=torch.float32).reshape(-1, 1, 1, 1)
    ...         return Batch(x, torch.ones(hi - lo, 1, dtype=torch.bool), {"square": x.flatten() ** 2})
    ...     def sample_columns(self, extras):
    ...         return {"big": (extras()["square"] > 1).tolist()}
    >>> c = run(Squares(), batch_size=2, progress=False)
    >>> c.extras["square"].tolist(), c.samples["big"].tolist()
    ([0.0, 1.0, 4.0], [False, False, True])
    """

    name: str                     # shown by the progress bar
    samples: pd.DataFrame         # one row per sample, in store order
    layers: list[int]
    labels: list[str]
    extra_keys: tuple[str, ...]   # names of the per-sample extras of every batch (empty: none)
    meta: dict                    # model, n_layers, d_model, config_hash, padding_side, codi
    device: torch.device
    dtype: torch.dtype            # the model's dtype (the default store dtype follows it)

    def batch(self, lo: int, hi: int) -> Batch: ...

    def sample_columns(self, extras: Callable[[], dict[str, np.ndarray]]) -> dict[str, list]: ...


def config_hash(model: torch.nn.Module) -> str:
    """Hash of the model config without run-time switches (attention kernel, dtype, output flags).

    >>> import interp
    >>> len(config_hash(interp.load_model("tiny-gpt2").model))
    16
    """
    cfg = {k: v for k, v in model.config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE_CONFIG}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ToHost:
    """Device -> host copies. On CUDA: a side stream copies into two pinned staging buffers while the next batch
    computes; `push` returns the batches whose copies are done (at most one is in flight), each as
    `(x, *payload)`. On CPU: pass-through.

    >>> ToHost(torch.device("cpu")).push(torch.ones(1), "anything")[0][1]
    'anything'
    """

    def __init__(self, device: torch.device):
        self.cuda = torch.device(device).type == "cuda"
        self.pending: list[tuple[Tensor, tuple, Any]] = []
        self.bufs: list[Tensor | None] = [None, None]
        self.k = 0
        if self.cuda:
            self.stream = torch.cuda.Stream(device)

    def push(self, x: Tensor, *payload: Any) -> list[tuple]:
        if not self.cuda:
            return [(x, *payload)]
        slot = self.k % 2
        self.k += 1
        if self.bufs[slot] is None or self.bufs[slot].shape[1:] != x.shape[1:] or len(self.bufs[slot]) < len(x) \
                or self.bufs[slot].dtype != x.dtype:
            self.bufs[slot] = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        view = self.bufs[slot][:len(x)]
        self.stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(self.stream):
            view.copy_(x, non_blocking=True)
            x.record_stream(self.stream)
            event = torch.cuda.Event()
            event.record(self.stream)
        self.pending.append((view, payload, event))
        return self._ready(keep=1)

    def flush(self) -> list[tuple]:
        return self._ready(keep=0)

    def _ready(self, keep: int) -> list[tuple]:
        out = []
        while len(self.pending) > keep:
            view, payload, event = self.pending.pop(0)
            event.synchronize()
            out.append((view, *payload))
        return out


def _host(extras: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    return None if extras is None else {k: v.cpu() for k, v in extras.items()}


def _numpy(t: Tensor) -> np.ndarray:
    return t.float().numpy() if t.is_floating_point() else t.numpy()


class _Memory:
    """Rows kept in memory (no `out=`)."""

    def __init__(self, n: int, inner: tuple[int, int, int], sdt: torch.dtype, keys: tuple[str, ...]):
        self.resid = torch.zeros((n, *inner), dtype=sdt)
        self.valid = torch.zeros((n, inner[1]), dtype=torch.bool)
        self.extras: dict[str, list[Tensor]] = {k: [] for k in keys}
        self.row = 0

    def add(self, x: Tensor, v: Tensor, extras: dict[str, Tensor] | None) -> None:
        self.resid[self.row:self.row + len(x)] = x
        self.valid[self.row:self.row + len(x)] = v.cpu()
        for k in self.extras:
            self.extras[k].append(extras[k].cpu())
        self.row += len(x)

    def numpy_extras(self) -> dict[str, np.ndarray]:
        return {k: _numpy(torch.cat(v)) for k, v in self.extras.items()}


def _meta(source: BatchSource, sdt: torch.dtype, batch_size: int, shard_size: int | None) -> dict:
    per_row = len(source.layers) * len(source.labels) * source.meta["d_model"] * sdt.itemsize
    return dict(format=store.FORMAT, version=store.VERSION, **source.meta,
                model_dtype=str(source.dtype).split(".")[-1], dtype=str(sdt).split(".")[-1], layers=source.layers,
                positions=source.labels, n_samples=len(source.samples),
                samples_hash=store.samples_hash(source.samples),
                shard_size=store.shard_rows(shard_size, per_row, batch_size), extras=list(source.extra_keys))


def _open(ranks: Ranks, out: Any, meta: dict, samples: pd.DataFrame) -> tuple[store.StoreWriter | None, int]:
    """Process 0 checks the folder and opens (or resumes) the store; every process learns the resume row."""
    if not ranks.main:
        code = ranks.share(_FAILED)
        if code == _FAILED:
            raise RuntimeError("process 0 could not open the store (its error is printed above); fix that and "
                               "launch again.")
        return None, code
    writer, code = None, _FAILED
    try:
        old = store.check_folder(out, meta)  # raises before anything is written
        if old is not None and old.get("complete"):
            code = _COMPLETE
        else:
            writer = store.open_writer(out, meta, samples, meta["shard_size"])
            code = writer.start_row
    finally:
        ranks.share(code)  # _FAILED when the lines above raised: the other processes stop too
    return writer, code


def _exchange(ranks: Ranks, b: Batch | None, keys: tuple[str, ...], to_all: bool) -> list[Batch | None]:
    flat = None if b is None else [b.resid, b.valid, *[b.extras[k] for k in keys]]
    got = ranks.exchange(flat, 2 + len(keys), to_all)
    return [None if g is None else Batch(g[0], g[1], dict(zip(keys, g[2:])) if keys else None) for g in got]


def run(source: BatchSource, *, batch_size: int, out: str | os.PathLike | None = None,
        dtype: str | torch.dtype | None = None, shard_size: int | None = None,
        progress: bool = True) -> ActivationCache:
    """Cache every sample of `source` (see the module docstring); `out=` streams to a resumable store.

    >>> import tempfile
    >>> class Ramp:       # 5 samples, layer 0, one position, d_model 1: sample i holds the value i
    ...     name, layers, labels, extra_keys = "ramp", [0], ["tok_0"], ()
    ...     device, dtype = torch.device("cpu"), torch.float32
    ...     samples = pd.DataFrame({"id": [str(i) for i in range(5)], "text": list("abcde")})
    ...     meta = dict(model="ramp", n_layers=0, d_model=1, config_hash="-", padding_side="left", codi=None)
    ...     def batch(self, lo, hi):
    ...         x = torch.arange(lo, hi, dtype=torch.float32).reshape(-1, 1, 1, 1)
    ...         return Batch(x, torch.ones(hi - lo, 1, dtype=torch.bool))
    ...     def sample_columns(self, extras):
    ...         return {}
    >>> out = tempfile.mkdtemp() + "/c"
    >>> c = run(Ramp(), batch_size=2, out=out, shard_size=3, progress=False)
    >>> c.meta["n_shards"], c.sel(layer=0, position="tok_0")[:, 0].tolist()
    (2, [0.0, 1.0, 2.0, 3.0, 4.0])
    >>> run(Ramp(), batch_size=2, out=out, shard_size=3, progress=False).folder == c.folder   # complete: reopened
    True
    """
    check_run_args(batch_size, out, dtype, shard_size)
    sdt = store_dtype(dtype, source.dtype)
    meta = _meta(source, sdt, batch_size, shard_size)
    ranks = Ranks.current()
    ranks.check_model_device(source.device)
    ranks.check_same("inputs (model, prompts, layers, positions, batch_size or out)",
                     {**meta, "batch_size": batch_size, "out": None if out is None else str(out)})
    keys, n = tuple(source.extra_keys), len(source.samples)
    writer, start = None, 0
    if out is not None:
        writer, start = _open(ranks, out, meta, source.samples)
        if start == _COMPLETE:
            return load_cache(out)
    sink = writer if writer is not None else _Memory(n, (len(source.layers), len(source.labels),
                                                         meta["d_model"]), sdt, keys) if out is None else None
    host = ToHost(source.device if ranks.world == 1 else ranks.device())
    n_batches = -(-n // batch_size)
    rounds = range(start // batch_size, n_batches, ranks.world)
    for k0 in tqdm(rounds, disable=not progress or not ranks.main, desc=f"cache {source.name}", unit="batch"):
        k = k0 + ranks.rank
        b = source.batch(k * batch_size, min(n, (k + 1) * batch_size)) if k < n_batches else None
        if b is not None:
            b = Batch(b.resid.to(sdt), b.valid, b.extras)
        got = [b] if ranks.world == 1 else _exchange(ranks, b, keys, to_all=out is None)
        for r, g in enumerate(got):
            if g is None:
                continue
            skip = max(0, start - (k0 + r) * batch_size)  # rows of a resumed batch that the store already has
            extras = None if g.extras is None else {key: v[skip:] for key, v in g.extras.items()}
            for x, v, e in host.push(g.resid[skip:], g.valid[skip:], extras):
                sink.add(x, v.cpu(), _host(e))
    for x, v, e in host.flush():
        sink.add(x, v.cpu(), _host(e))
    if writer is not None:
        writer.flush()
        columns = source.sample_columns(lambda: store.read_extras(out, writer.meta))
        writer.finish(source.samples.assign(**columns) if columns else None)
    ranks.barrier()
    if out is not None:
        return load_cache(out)
    extras = sink.numpy_extras()
    samples = source.samples.assign(**source.sample_columns(lambda: extras))
    c = ActivationCache(layers=source.layers, positions=source.labels, samples=samples,
                        meta={**meta, "complete": True},
                        parts=[store.Part(resid=sink.resid, valid=sink.valid.numpy(), stored=meta["dtype"])])
    c.extras = extras
    return c
