"""The machine a benchmark runs on, its thread pools, and timing that compares like with like (the scripts import it
as `from machine import ...`, benchmarks/ being the script's folder).

torch's intra-op pool and the BLAS / OpenMP pools of numpy, scipy and scikit-learn are separate: setting
torch.set_num_threads leaves OpenBLAS at every core (on a shared 2-core machine scikit-learn then ran ~7x slower than
pinned in the audit of issue 15). `pin_threads(n)` sets all of them, through threadpoolctl (a
scikit-learn dependency); `pools()` says what each one is set to.

    >>> pin_threads(1); pools()          # e.g. 'torch 1, openmp 1, blas 1'
    >>> timed(lambda: sum(range(10**6)))  # Timing(cpu_s=..., wall_s=..., load=(before, after), result=...)
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what `platform` knows."""
    try:
        return next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                    if x.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe(device: torch.device | str | None = None) -> str:
    """The GPU (with CUDA version) for a CUDA device, else CPU model, cores, torch threads and architecture."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()} ({platform.machine()})"


_LIMITS: list = []


def pin_threads(n: int) -> None:
    """Run torch's intra-op pool and every BLAS / OpenMP pool loaded in this process (numpy's and scipy's OpenBLAS,
    scikit-learn's and torch's OpenMP) at `n` threads. Call it after importing what the benchmark uses: threadpoolctl
    sees only the libraries loaded so far."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    _LIMITS.clear()
    _LIMITS.append(threadpool_limits(limits=n))          # kept alive: the limits hold until the next call


def pools() -> str:
    """Thread counts of torch and of each BLAS / OpenMP pool, e.g. 'torch 2, openmp 2, blas 2'."""
    from threadpoolctl import threadpool_info

    by_api: dict[str, set[int]] = {}
    for lib in threadpool_info():
        by_api.setdefault(lib["user_api"], set()).add(lib["num_threads"])
    parts = [f"torch {torch.get_num_threads()}"]
    parts += [f"{api} {'/'.join(map(str, sorted(ns)))}" for api, ns in sorted(by_api.items())]
    return ", ".join(parts)


def thread_counts() -> list[int]:
    """1 thread and all threads (the cores of this machine), without repeats."""
    return sorted({1, os.cpu_count() or 1})


def loadavg() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


@dataclass
class Timing:
    cpu_s: float
    wall_s: float
    load: tuple[float, float]
    result: Any = None


def cpu_time() -> float:
    """CPU seconds of this process and of its children that have finished (a worker pool closed inside a timed call
    counts)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def timed(fn: Callable[[], Any]) -> Timing:
    """CPU time (this process and the children it waited for: `cpu_time`) and wall time of one call, with the load
    average before and after."""
    load0 = loadavg()
    c0, t0 = cpu_time(), time.perf_counter()
    out = fn()
    return Timing(cpu_time() - c0, time.perf_counter() - t0, (load0, loadavg()), out)


def interleaved(methods: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[Timing]]:
    """Every method once per round, `repeats` rounds (A B C A B C ...), so machine noise hits them alike."""
    out: dict[str, list[Timing]] = {k: [] for k in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            out[name].append(timed(fn))
    return out


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """'median [min-max]' of repeated measurements ('value' for one)."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def load_range(timings: list[Timing]) -> str:
    """The load averages seen before and after a method's runs, as 'lo-hi'."""
    vals = [v for t in timings for v in t.load]
    return f"{min(vals):.1f}-{max(vals):.1f}"


def write_result(text: str, out: str | Path) -> None:
    """Print a results table and write it to `out` (benchmarks/results/<topic>.md, read by run_all --collect)."""
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(f"wrote {out}")
