"""Shared test inputs for tests/interp: prompts of different lengths and a padded batch as interp.cache builds it."""

from __future__ import annotations

import torch

PROMPTS = [
    "The capital of France is",
    "Hi",
    "Tom has 3 bags of 4 apples. He eats 2.",
    "a b c",
]
PARITY_MODELS = ["tiny-gpt2", "tiny-llama", "smollm2-135m"]
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
