"""Shared inputs of the interventions tests: tiny random CODI models (LoRA B drawn at random so the adapter matters,
3 latents), short problems."""

from __future__ import annotations

import torch

from codi.config import CODIConfig
from codi.model import CODIModel

PROBS = [
    {"question": "3 + 4 = ?", "answer": "7"},
    {"question": "Tom has 12 eggs. He eats 5.", "answer": "7"},
    {"question": "9 - 2 * 3 = ?", "answer": "3"},
]
CLEAN = [
    {"question": "3 + 4 = ?", "answer": "7"},
    {"question": "Tom has 12 eggs and 5 more.", "answer": "17"},
]
CORRUPT = [
    {"question": "3 + 5 = ?", "answer": "8"},
    {"question": "Tom has 19 eggs and 5 more.", "answer": "24"},
]


def tiny_codi(base: str, latents: int = 3) -> CODIModel:
    torch.manual_seed(0)
    cm = CODIModel.from_config(CODIConfig(base, num_latents=latents, lora_r=4))
    with torch.no_grad():  # LoRA B starts at zero; give the adapter an effect so the tests cover peft too
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return cm.eval()


def qa(probs):
    return [p["question"] for p in probs], [p["answer"] for p in probs]
