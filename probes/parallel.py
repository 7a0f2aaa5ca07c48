"""Chunks of cells fitted side by side in threads, for `probes.sweep` on CPU.

On a few cores, torch's and OpenBLAS's own threads speed up one chunk's work poorly (the eigendecompositions and the
solver's small steps scale little: 2 threads gave 1.2x on this project's 2-core machine,
benchmarks/results/probes.md); independent chunks of cells, one per thread, each single-threaded, scale almost
linearly. Every heavy step of a chunk releases the GIL (torch ops, numpy matmuls; `probes.batched` avoids scipy's
BLAS wrappers, which hold it). While the workers run, torch and BLAS are set to one thread, and set back after.

    >>> import numpy as np
    >>> jobs = [(0, np.arange(3)), (1, np.arange(4))]
    >>> [(j[0], r) for j, r in run_jobs(lambda j: int(j[1].sum()), jobs, workers=2)]   # results in job order
    [(0, 3), (1, 6)]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

import torch

from argcheck import check_int

MIN_SAMPLES = 200   # below this many samples a chunk's tensors are small and threads fight over the GIL


def resolve_workers(n_jobs: int | None, device: torch.device, n_samples: int = MIN_SAMPLES) -> int:
    """How many chunks run at once: `n_jobs`, or by default torch's thread count on CPU when there are at least
    MIN_SAMPLES samples, else 1, and 1 on an accelerator (one stream of work keeps a GPU busy). Measured on this
    project's 2-core CPU (sweep with a 100-permutation null, 48 cells, d=576): 256 samples 7.0 s at one thread,
    4.9 s in 2 workers; 96 samples 7.9 s at one thread, 10.2 s in 2 workers.

    >>> resolve_workers(3, torch.device("cpu")), resolve_workers(None, torch.device("cuda"))
    (3, 1)
    >>> resolve_workers(None, torch.device("cpu"), n_samples=96)
    1
    >>> resolve_workers(0, torch.device("cpu"))
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: n_jobs=0: must be an integer >= 1. Fix: pass n_jobs=1 or more.
    """
    if n_jobs is None:
        return torch.get_num_threads() if device.type == "cpu" and n_samples >= MIN_SAMPLES else 1
    return check_int("n_jobs", n_jobs, min=1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """torch at one thread and every BLAS pool at one thread inside the block; both restored after.

    >>> before = torch.get_num_threads()
    >>> with single_threaded():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def run_jobs(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int,
             single_thread: bool = True) -> Iterator[tuple[Any, Any]]:
    """(job, fn(job)) for every job, in job order. With workers > 1, `workers` threads run fn single-threaded
    (`single_threaded`) and at most 2 x workers jobs are in flight, so `jobs` may be a generator that reads data
    lazily (it is advanced in the calling thread only). With one worker the jobs run here, single-threaded too
    unless `single_thread=False` (then at the caller's thread counts; torch's own threads slowed the sweep down on
    this project's 2-core CPU: 36.2 s against 30.1 s at one thread for 48 cells, 576 samples, d=576). An exception
    in fn is raised here, after the running jobs finish.

    >>> [r for _, r in run_jobs(lambda x: x * x, range(4), workers=1)]
    [0, 1, 4, 9]
    """
    if workers <= 1:
        with single_threaded() if single_thread else nullcontext():
            for job in jobs:
                yield job, fn(job)
        return
    with single_threaded(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe-cells") as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append((job, pool.submit(fn, job)))
            if len(pending) >= 2 * workers:
                done_job, fut = pending.popleft()
                yield done_job, fut.result()
        while pending:
            done_job, fut = pending.popleft()
            yield done_job, fut.result()
