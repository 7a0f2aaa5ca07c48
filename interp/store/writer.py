"""Writing a store: rows buffered up to one shard, each shard and its extras written atomically, checksums in
meta.json after every shard, and the resume point of an interrupted store.

    >>> import tempfile, torch, pandas as pd
    >>> from interp.store.files import FORMAT, samples_hash
    >>> samples = pd.DataFrame({"id": ["0"], "text": ["a"]})
    >>> meta = dict(format=FORMAT, layers=[0], positions=["tok_0"], d_model=1, dtype="float32", n_samples=1,
    ...             samples_hash=samples_hash(samples), extras=[])
    >>> w = open_writer(tempfile.mkdtemp() + "/c", meta, samples, shard_size=4)
    >>> w.add(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, dtype=torch.bool)); w.finish(); w.meta["n_shards"]
    1
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from jaxtyping import Bool, Float
from torch import Tensor

import formats
from interp.store.files import (
    EXTRAS,
    META,
    SHARD,
    check_folder,
    extras_name,
    file_index,
    files_like,
    shard_name,
    verify_file,
    write_samples,
)

__all__ = ["StoreWriter", "open_writer"]


@dataclass
class StoreWriter:
    """Buffers rows in memory up to one shard and writes each full shard (and its extras) atomically.
    Peak memory: one shard.

    >>> import tempfile, pandas as pd
    >>> from interp.store.files import FORMAT, samples_hash
    >>> samples = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "b", "c"]})
    >>> meta = dict(format=FORMAT, layers=[0], positions=["tok_0"], d_model=1, dtype="float32", n_samples=3,
    ...             samples_hash=samples_hash(samples), extras=[])
    >>> folder = tempfile.mkdtemp() + "/c"
    >>> w = open_writer(folder, meta, samples, shard_size=2)
    >>> w.add(torch.zeros(3, 1, 1, 1), torch.ones(3, 1, dtype=torch.bool))   # shard 0 written, 1 row buffered
    >>> sorted(w.meta["checksums"])
    ['shard_00000.safetensors']
    >>> w.finish(); w.meta["n_shards"], w.meta["complete"]
    (2, True)
    """

    folder: Path
    meta: dict
    shard_size: int
    start_row: int
    _buf: Tensor | None = None
    _valid: Tensor | None = None
    _extras: dict[str, list[Tensor]] = field(default_factory=dict)
    _fill: int = 0
    _next_shard: int = 0

    def add(self, resid: Float[Tensor, "batch layer pos d"], valid: Bool[Tensor, "batch pos"],
            extras: dict[str, Tensor] | None = None) -> None:
        """Append rows (CPU tensors, resid in the store dtype; extras: one `[batch, ...]` tensor per name in
        meta["extras"]); writes shards as they fill."""
        keys = self.meta["extras"]
        if sorted(extras or {}) != sorted(keys):
            raise ValueError(f"extras {sorted(extras or {})} do not match the store's {keys}.")
        if self._buf is None:
            self._buf = torch.empty((self.shard_size, *resid.shape[1:]), dtype=resid.dtype)
            self._valid = torch.empty((self.shard_size, valid.shape[1]), dtype=torch.bool)
        done = 0
        while done < resid.shape[0]:
            take = min(self.shard_size - self._fill, resid.shape[0] - done)
            self._buf[self._fill:self._fill + take] = resid[done:done + take]
            self._valid[self._fill:self._fill + take] = valid[done:done + take]
            for k in keys:
                self._extras.setdefault(k, []).append(extras[k][done:done + take])
            self._fill += take
            done += take
            if self._fill == self.shard_size:
                self._write_shard()

    def _write_shard(self) -> None:
        sums = self.meta["checksums"]
        if self._extras:  # first the extras, then the shard: a shard on disk always has its extras
            name = extras_name(self._next_shard)
            sums[name] = formats.atomic_save_safetensors(
                {k: torch.cat(v).contiguous() for k, v in self._extras.items()}, self.folder / name)
        name = shard_name(self._next_shard)
        sums[name] = formats.atomic_save_safetensors(
            {"resid": self._buf[:self._fill].contiguous(), "valid": self._valid[:self._fill].contiguous()},
            self.folder / name)
        formats.atomic_write_json(self.folder / META, self.meta, indent=2)  # resume can now verify this shard
        self._next_shard += 1
        self._fill = 0
        self._extras = {}

    def flush(self) -> None:
        """Write the last, partial shard."""
        if self._fill:
            self._write_shard()

    def finish(self, samples: pd.DataFrame | None = None) -> None:
        """Write the last shard, then (if given) the final sample table, then mark the store complete."""
        self.flush()
        if samples is not None:
            write_samples(self.folder, samples)
        self.meta["complete"] = True
        self.meta["n_shards"] = self._next_shard
        formats.atomic_write_json(self.folder / META, self.meta, indent=2)


def _shards_done(folder: Path, old: dict, extras: list[str]) -> tuple[int, dict[str, str]]:
    """Shards of an interrupted store that are whole (checksums recorded and matching), and their checksums."""
    old_sums = old.get("checksums")
    n_done, sums = 0, {}
    while (folder / shard_name(n_done)).exists():
        names = [shard_name(n_done)] + ([extras_name(n_done)] if extras else [])
        if old_sums is not None:
            if any(n not in old_sums or not (folder / n).exists() for n in names):
                break  # killed between a file's rename and its checksum: write the shard again
            for n in names:
                verify_file(folder / n, old_sums[n])
                sums[n] = old_sums[n]
        n_done += 1
    return n_done, sums


def open_writer(folder: str | os.PathLike, meta: dict, samples: pd.DataFrame, shard_size: int) -> StoreWriter:
    """Create (or resume) a store. Call `check_folder` first, while nothing has been written yet.

    A writer stopped after its first shard resumes at the first row of the second:

    >>> import tempfile, pandas as pd
    >>> from interp.store.files import FORMAT, samples_hash
    >>> samples = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "b", "c"]})
    >>> meta = dict(format=FORMAT, layers=[0], positions=["tok_0"], d_model=1, dtype="float32", n_samples=3,
    ...             samples_hash=samples_hash(samples), extras=[], shard_size=2)
    >>> folder = tempfile.mkdtemp() + "/c"
    >>> w = open_writer(folder, meta, samples, shard_size=2)
    >>> w.start_row
    0
    >>> w.add(torch.zeros(2, 1, 1, 1), torch.ones(2, 1, dtype=torch.bool))   # one whole shard, then stopped
    >>> open_writer(folder, meta, samples, shard_size=2).start_row
    2
    """
    folder = Path(folder)
    old = check_folder(folder, meta)
    folder.mkdir(parents=True, exist_ok=True)
    formats.clean_temporaries(folder)  # partial files of a killed writer (never a user's file)
    extras = list(meta.get("extras") or [])
    n_done, sums = _shards_done(folder, old, extras) if old is not None else (0, {})
    for stale in files_like(folder, SHARD) + files_like(folder, EXTRAS):  # past the first gap: not trusted
        if file_index(stale) >= n_done:
            stale.unlink()
    meta = {**meta, "extras": extras, "shard_size": shard_size, "complete": False, "n_shards": None,
            "checksums": sums}
    if old is None:
        write_samples(folder, samples)
    formats.atomic_write_json(folder / META, meta, indent=2)
    return StoreWriter(folder=folder, meta=meta, shard_size=shard_size,
                       start_row=min(n_done * shard_size, meta["n_samples"]), _next_shard=n_done)
