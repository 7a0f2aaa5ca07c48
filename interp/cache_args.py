"""The arguments of `interp.cache` (plain and CODI paths alike), checked before any work and before anything is
written: each refusal is an `argcheck.BadArgument` that names the argument, shows the value, says what is allowed
and how to fix it.

    >>> check_run_args(batch_size=8, out="runs/c", dtype="bfloat16", shard_size=None)
    >>> check_run_args(batch_size=2.5, out=None, dtype=None, shard_size=None)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: batch_size=2.5: must be an integer >= 1. Fix: pass batch_size=1 or more.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

import argcheck
from interp import positions as pos

__all__ = ["STORE_DTYPES", "store_dtype", "check_run_args", "check_prompts", "check_layers", "plain_labels",
           "codi_labels"]

STORE_DTYPES = ("float32", "bfloat16", "float16")


def store_dtype(dtype: str | torch.dtype | None, model_dtype: torch.dtype) -> torch.dtype:
    """The dtype a store keeps: `dtype` if given (float32, bfloat16, float16), else the model's bf16/fp16, else
    float32.

    >>> store_dtype(None, torch.bfloat16), store_dtype("float32", torch.bfloat16)
    (torch.bfloat16, torch.float32)
    >>> store_dtype("float33", torch.float32)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: dtype='float33': must be one of 'float32', 'bfloat16', 'float16'. ...
    """
    if dtype is None:
        return model_dtype if model_dtype in (torch.bfloat16, torch.float16) else torch.float32
    name = str(dtype).replace("torch.", "") if isinstance(dtype, torch.dtype) else dtype
    argcheck.check_choice("dtype", name, STORE_DTYPES,
                          fix='pass dtype="float32", "bfloat16" or "float16", or leave it out (the model\'s)')
    return getattr(torch, name)


def check_run_args(batch_size: Any, out: Any, dtype: Any, shard_size: Any) -> None:
    """`batch_size`, `out`, `dtype` and `shard_size` (see the module docstring).

    >>> check_run_args(batch_size=8, out=None, dtype="float16", shard_size=64)     # fine: returns None
    >>> check_run_args(batch_size=8, out=None, dtype=None, shard_size=0)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: shard_size=0: must be None or an integer >= 1. Fix: pass shard_size=1 or more ...
    """
    argcheck.check_int("batch_size", batch_size, min=1)
    if out is not None:
        argcheck.check_out_folder("out", out)
    store_dtype(dtype, torch.float32)
    argcheck.check_int("shard_size", shard_size, min=1, none_ok=True,
                       fix="pass shard_size=1 or more (rows per shard file), or leave it out")


def check_prompts(prompts: Any) -> Any:
    """Refuse what cannot be a prompt list (None, empty, a number); one string is one prompt, a generator is read.

    >>> check_prompts("Hi")
    ['Hi']
    >>> check_prompts([])
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: prompts=[]: the prompt list is empty; pass at least one prompt string. ...
    """
    fix = "pass a list of prompt strings, dicts with a 'text' key, a DataFrame with a 'text' column, or a task"
    if isinstance(prompts, str):
        return [prompts]
    if prompts is None or isinstance(prompts, (bytes, int, float, dict)) or not hasattr(prompts, "__iter__"):
        raise argcheck.BadArgument("prompts", prompts, "must be a list of prompts (or one prompt string)", fix)
    if not hasattr(prompts, "__len__"):  # a generator
        prompts = list(prompts)
    empty = prompts.empty if isinstance(prompts, pd.DataFrame) else len(prompts) == 0
    if empty:
        raise argcheck.BadArgument("prompts", prompts, "the prompt list is empty; pass at least one prompt string",
                                   fix)
    return prompts


def check_layers(layers: Any, n_layers: int) -> list[int]:
    """`layers` ("all", an int, or ints in 0..n_layers) as a sorted list; anything else is refused, naming it.

    >>> check_layers([2, 0], 2), check_layers("all", 2)
    ([0, 2], [0, 1, 2])
    >>> check_layers([0, 3], 2)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: layers=[0, 3]: this model has 2 layers, so valid layers are 0..2 ...
    """
    items = [layers] if isinstance(layers, int) and not isinstance(layers, bool) else layers
    if isinstance(items, (list, tuple, range)) and items and all(
            isinstance(x, int) and not isinstance(x, bool) for x in items):
        bad = sorted({x for x in items if not 0 <= x <= n_layers})
        if bad:
            raise argcheck.BadArgument("layers", layers, f"this model has {n_layers} layers, so valid layers are "
                                       f"0..{n_layers} (0 = embeddings, {n_layers} = after the last block); {bad} "
                                       f"are out of range", f"keep layers within 0..{n_layers}")
    return argcheck.check_layers("layers", layers, n_layers)


def _check_positions_type(positions: Any, forms: str, example: str) -> None:
    if isinstance(positions, str) and positions == "all":
        return
    if not isinstance(positions, (str, int, list, tuple)) or isinstance(positions, bool) or (
            isinstance(positions, (list, tuple)) and not positions):
        raise argcheck.BadArgument("positions", positions, f"must be 'all' or a non-empty list of labels: {forms}",
                                   f'pass positions="all" or e.g. {example}')


def plain_labels(positions: Any, lengths: list[int] | None) -> list[str] | None:
    """The labels of a plain-model cache (`positions.plain_labels`), refused as `positions` when malformed.
    With `lengths=None` only the syntax is checked (before tokenizing) and "all" gives None.

    >>> plain_labels(["last", 0], None), plain_labels("all", [2])
    (['last', 'tok_0'], ['tok_0', 'tok_1'])
    """
    _check_positions_type(positions, pos.PLAIN_FORMS, '["tok_0", "last"]')
    if isinstance(positions, str) and positions == "all" and lengths is None:
        return None
    try:
        return pos.plain_labels(positions, lengths or [1])
    except (ValueError, TypeError) as err:
        raise argcheck.BadArgument("positions", positions, str(err).rstrip(".")) from None


def codi_labels(positions: Any, n_q: int, num_latents: int, n_resp: int) -> list[str]:
    """The labels of a CODI cache (`positions.codi_labels`), refused as `positions` when malformed.

    >>> codi_labels(["bot", "latents"], n_q=3, num_latents=2, n_resp=0)
    ['bot', 'latent_0', 'latent_1']
    """
    _check_positions_type(positions, pos.CODI_FORMS, '["bot", "latents", "eot"]')
    try:
        return pos.codi_labels(positions, n_q, num_latents, n_resp)
    except (ValueError, TypeError) as err:
        raise argcheck.BadArgument("positions", positions, str(err).rstrip(".")) from None
