"""`ActivationCache`, the residual stream `[sample, layer, position, d]` with its labels, sample table, extras
and metadata, and `load_cache`, which opens a store folder as one (the files themselves are `interp.store`'s).

    >>> import interp
    >>> c = interp.cache(interp.load_model("tiny-llama"), ["Hi"], layers=[1], progress=False)
    >>> type(c).__module__
    'interp.activations'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from jaxtyping import Bool, Float, Int

import argcheck
from interp import positions as pos
from interp import store

__all__ = ["ActivationCache", "load_cache"]


class ActivationCache:
    """Residual stream `[sample, layer, position, d]` with labels, the sample table and metadata.

    Numpy results are always float32 (bf16 stored values are widened); arrays of a cache loaded from disk are
    memory-mapped shards and only the selected cells are read.

    >>> import interp
    >>> c = interp.cache(interp.load_model("tiny-llama"), ["The capital of France is", "Hi"], progress=False)
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
            raise ValueError(f"position {label!r} is not stored in this cache; it holds {pos.shorten(self.positions)}."
                             " Aliases like 'last' work only in sel().")
        return self.positions.index(label)

    def sel(self, layer: int, position: str | int, allow_missing: bool = False) -> Float[np.ndarray, "sample d"]:
        """float32 `[sample, d]` at one layer and one position label (or alias: `last`, `prompt[-k]`, `q[-k]`).
        Samples without that position raise, unless `allow_missing=True` (their rows are zeros).

        >>> import interp
        >>> c = interp.cache(interp.load_model("tiny-llama"), ["a b c", "Hi"], layers=[1], progress=False)
        >>> c.valid.sum(1).tolist()                                    # real tokens per sample
        [3, 2]
        >>> bool((c.sel(layer=1, position="last")[1] == c.sel(layer=1, position="tok_1")[1]).all())
        True
        >>> bool(c.sel(layer=1, position="tok_2", allow_missing=True)[1].any())   # sample 1 has no tok_2: zeros
        False
        """
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
        disk this is the memory map itself; otherwise only the selected cells are read into memory.

        >>> import interp
        >>> c = interp.cache(interp.load_model("tiny-llama"), ["a b c", "Hi"], progress=False)
        >>> c.array().shape, c.array(layers=[2, 0], positions=["tok_0", 1]).shape
        ((2, 3, 3, 64), (2, 2, 2, 64))
        """
        li = slice(None) if layers is None else [self._layer_index(x) for x in layers]
        pi = slice(None) if positions is None else [self._pos_index(x) for x in positions]
        index = (slice(None), li, pi) if isinstance(li, slice) or isinstance(pi, slice) else (
            slice(None), np.array(li)[:, None], np.array(pi)[None, :])
        out = [p.take(index) for p in self.parts]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def summary(self, show: bool = True) -> str:
        """Shape, valid cells, latent views and the identity check (`interp.identity`); printed and returned.

        >>> import interp
        >>> c = interp.cache(interp.load_model("tiny-llama"), ["Hi", "a b c"], layers=[1], progress=False)
        >>> print(c.summary(show=False))      # the identity check warns when positions cannot differ
        ActivationCache('tiny-llama', samples=2, layers=[1], positions=..., d_model=64, dtype=float32)
        valid cells: ...
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
        """(row indices, float32 block) per shard: stream a big cache without loading it whole.

        >>> import interp, tempfile
        >>> out = tempfile.mkdtemp() + "/c"
        >>> c = interp.cache(interp.load_model("tiny-llama"), ["a", "b", "c"], layers=[1], out=out, shard_size=2,
        ...                  progress=False)
        >>> [(rows.tolist(), block.shape) for rows, block in c.iter_parts()]
        [([0, 1], (2, 1, 1, 64)), ([2], (1, 1, 1, 64))]
        """
        for p, lo in zip(self.parts, self._starts):
            yield np.arange(lo, lo + p.n), p.take(slice(None))


def load_cache(folder: str | os.PathLike) -> ActivationCache:
    """Open a cache folder written by `cache(..., out=folder)`: the arrays are memory-mapped, not read; the extras
    (CODI latent views, response ids) are read and verified once.

    >>> import interp, tempfile
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = interp.cache(interp.load_model("tiny-llama"), ["Hi", "a b c"], layers=[1], out=out, progress=False)
    >>> c = load_cache(out)
    >>> c.sel(layer=1, position="last").dtype
    dtype('float32')
    """
    argcheck.check_path_exists("folder", folder, kind="folder",
                               fix="pass the out= folder of an interp.cache call (or of `codi-lens cache --out`)")
    meta = store.read_meta(folder)
    parts = store.open_parts(folder, meta)
    c = ActivationCache(layers=meta["layers"], positions=meta["positions"], samples=store.read_samples(folder),
                        meta=meta, parts=parts, folder=Path(folder))
    c.extras = store.read_extras(folder, meta)
    return c
