"""The processes of one cache run: one, or N started by `accelerate launch` (torch.distributed underneath).

How `interp.cache` splits the work: the batch grid is fixed, batch k = rows [k*batch_size, (k+1)*batch_size),
whatever the number of processes. In round j, process r computes batch `first + j*N + r` (strided over batches);
the round's batches meet on process 0 (`Ranks.exchange`), which writes them in row order into the one store. Without
`out=` every process receives every batch and returns the whole cache. Every row is computed in the same batch as in
a 1-process run, so the store equals a 1-process run bit for bit (same device kind, same thread count), and a run
that was killed resumes with any number of processes.

    accelerate launch --multi_gpu --num_processes 8 -m app cache --model NAME --out runs/c    # GPUs (NCCL)
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m app cache ...      # CPU processes (gloo)

(`accelerate launch --cpu --num_processes 2` starts only one process with accelerate 1.15, hence the form above.)

    >>> Ranks.current()                     # not launched: one process
    Ranks(rank=0, world=1, backend=None)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from codi.processes import end_group_at_exit

__all__ = ["Ranks", "launch_device"]

_DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64, torch.bool, torch.uint8, torch.int32,
           torch.int64]
_MAX_DIMS = 6


def _launched() -> int:
    """Processes the launcher started (WORLD_SIZE), 1 when not launched."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _state():
    """accelerate's process state (it initialises torch.distributed from the launcher's environment). CPU runs
    (ACCELERATE_USE_CPU=1, or no CUDA) use gloo; without `cpu=True` accelerate would see one process only."""
    from accelerate import PartialState

    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    end_group_at_exit()
    return state


def launch_device() -> torch.device | None:
    """This process's device when several processes were launched (`cuda:<local rank>` or `cpu`), else None.

    >>> launch_device() is None              # not launched
    True
    """
    if _launched() <= 1 and not _initialized():
        return None
    return torch.device(_state().device)


@dataclass
class Ranks:
    """This process's rank among `world` processes of one run, and the collectives the cache driver needs.

    >>> r = Ranks.current()                  # not launched: one process, collectives are no-ops
    >>> r.main, r.device(), r.share(7)
    (True, device(type='cpu'), 7)
    >>> Ranks(rank=1, world=2, backend="gloo").main       # only process 0 writes the store
    False
    """

    rank: int = 0
    world: int = 1
    backend: str | None = None

    @classmethod
    def current(cls) -> Ranks:
        """The running process group (accelerate / torchrun), or one process when none was launched."""
        if not _initialized():
            if _launched() <= 1:
                return cls()
            state = _state()
            if state.num_processes != _launched():
                raise RuntimeError(
                    f"the launcher started {_launched()} processes but accelerate set up {state.num_processes}; "
                    f"on CPU launch with `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N`.")
        dist = torch.distributed
        if dist.get_world_size() == 1:
            return cls()
        return cls(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))

    @property
    def main(self) -> bool:
        """True on the process that writes the store."""
        return self.rank == 0

    def device(self) -> torch.device:
        """Where collectives run: this process's CUDA device with NCCL, else the CPU."""
        if self.backend is not None and "nccl" in self.backend:
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def check_model_device(self, device: torch.device) -> None:
        """With NCCL every process must compute on its own GPU."""
        if self.world > 1 and self.device().type == "cuda" and torch.device(device) != self.device():
            raise ValueError(f"process {self.rank} of {self.world} runs on {self.device()} but the model is on "
                             f"{device}; load it with device=interp.ranks.launch_device() (the CLI does).")

    def share(self, value: int) -> int:
        """Process 0's `value` on every process."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.long, device=self.device())
        torch.distributed.broadcast(t, src=0)
        return int(t.item())

    def check_same(self, what: str, meta: dict) -> None:
        """Raise on every process unless all processes were given the same `meta` (inputs and settings)."""
        if self.world == 1:
            return
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()
        mine = torch.tensor([int(digest[:15], 16)], dtype=torch.long, device=self.device())
        every = [torch.empty_like(mine) for _ in range(self.world)]
        torch.distributed.all_gather(every, mine)
        if len({int(t.item()) for t in every}) > 1:
            raise ValueError(f"the {self.world} processes were given different {what}; under accelerate launch "
                             f"they split ONE run: pass the same model, prompts and settings on every process.")

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def exchange(self, tensors: Sequence[Tensor] | None, n: int, to_all: bool) -> list[list[Tensor] | None]:
        """Every process's `tensors` (n of them, or None when it has no batch this round), in rank order, on
        process 0 (or on every process with `to_all`); other processes get []. Tensors may differ in shape between
        processes; they travel as bytes, so every dtype arrives bit for bit."""
        dev = self.device()
        head = torch.zeros(n + 1, 2 + _MAX_DIMS, dtype=torch.long)
        if tensors is not None:
            head[0, 0] = 1
            for i, t in enumerate(tensors):
                head[i + 1, 0], head[i + 1, 1] = _DTYPES.index(t.dtype), t.dim()
                head[i + 1, 2:2 + t.dim()] = torch.tensor(t.shape)
        heads = [torch.empty_like(head, device=dev) for _ in range(self.world)]
        torch.distributed.all_gather(heads, head.to(dev))
        heads = [h.cpu() for h in heads]
        present = [bool(h[0, 0]) for h in heads]
        out: list[list[Tensor] | None] = [[] if p else None for p in present]
        for i in range(n):
            rows = [h[i + 1] for h, p in zip(heads, present) if p]
            dtype, ndim = _DTYPES[int(rows[0][0])], int(rows[0][1])
            shape = [max(int(r[2 + d]) for r in rows) for d in range(ndim)]
            mine = torch.zeros(shape, dtype=dtype, device=dev)
            if tensors is not None:
                t = tensors[i]
                mine[tuple(slice(0, s) for s in t.shape)] = t.to(dev)
            buf = mine.reshape(-1).view(torch.uint8)
            got = [torch.empty_like(buf) for _ in range(self.world)] if to_all or self.main else None
            if to_all:
                torch.distributed.all_gather(got, buf)
            else:
                torch.distributed.gather(buf, got, dst=0)
            if got is None:
                continue
            for r, h in enumerate(heads):
                if present[r]:
                    own = tuple(slice(0, int(s)) for s in h[i + 1, 2:2 + ndim])
                    out[r].append(got[r].view(dtype).reshape(shape)[own])
        return out if to_all or self.main else []
