"""One line naming the machine a benchmark ran on (the scripts import it as `from machine import describe`).

    >>> describe()      # e.g. 'AMD EPYC, 2 cores, torch threads 2 (x86_64)'
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

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
