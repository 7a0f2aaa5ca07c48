"""The process group of a launched run (`accelerate launch`, torchrun), torn down before the interpreter ends.

Left to interpreter finalisation, gloo's worker threads can outlive the interpreter and abort a process whose work
was done ("terminate called without an active exception", exit -6; a CI run of tests/interp/test_ranks.py failed
so). Whatever sets up a process group (codi.train's Accelerator, interp.ranks for the cache) calls
`end_group_at_exit()` right after.

    >>> end_group_at_exit()          # no group here: at exit there is nothing to tear down
    >>> end_group_at_exit()          # again: still one teardown at exit
"""

from __future__ import annotations

import atexit

import torch

__all__ = ["end_group_at_exit"]


def _end_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def end_group_at_exit() -> None:
    """Destroy the default process group at interpreter exit, while the interpreter is still whole (once).

    >>> end_group_at_exit()          # after init_process_group / Accelerator(); harmless without a group
    """
    atexit.unregister(_end_group)
    atexit.register(_end_group)
