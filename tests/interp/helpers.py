"""Shared test inputs for tests/interp: prompts of different lengths, the parity models (smollm2-135m, real weights,
marked slow), a padded batch as interp.cache builds it, and a snapshot of a folder tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PROMPTS = [
    "The capital of France is",
    "Hi",
    "Tom has 3 bags of 4 apples. He eats 2.",
    "a b c",
]
MANY = [f"Sample {i}: " + " ".join(f"w{(i * 7 + j) % 13}" for j in range(i % 9 + 3)) for i in range(40)]
PARITY_MODELS = ["tiny-gpt2", "tiny-llama", pytest.param("smollm2-135m", marks=pytest.mark.slow)]
TOL = 1e-4


def padded_batch(
    tokenizer, prompts: list[str], side: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """input_ids, attention_mask, position_ids (cumsum(mask) - 1) and real lengths, padded on `side`."""
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for b, x in enumerate(ids):
        sl = slice(width - len(x), width) if side == "left" else slice(0, len(x))
        input_ids[b, sl] = torch.tensor(x)
        mask[b, sl] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), [len(x) for x in ids]


def real_rows(t: torch.Tensor, lengths: list[int], side: str) -> list[torch.Tensor]:
    """Per sample, the [n_real, d] rows of a [batch, seq, d] tensor that hold real tokens."""
    width = t.shape[1]
    return [t[b, width - n :] if side == "left" else t[b, :n] for b, n in enumerate(lengths)]


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    base = getattr(model, "model", None) or model.transformer
    return getattr(base, "norm", None) or base.ln_f


def stat_tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, size and modification time."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}
