"""Shared helpers of the codi model tests: small CODI models whose LoRA actually changes the outputs."""

from __future__ import annotations

import torch

import codi

QUESTIONS = [
    "Tom has 3 bags of 4 apples. He eats 2. How many are left?",
    "Mia has 7 coins.",
    "A box holds 12 pens. Sam takes 5 pens out of the box and then buys 9 more pens for the box. How many now?",
]
PROBLEMS = [
    dict(id="a", question="Tom has 3 apples. He buys 2 more. How many?", cot="<<3+2=5>> <<5*2=10>>", answer="10"),
    dict(id="b", question="Mia has 7 coins. She loses 4.", cot="<<7-4=3>>", answer="3"),
    dict(id="c", question="A box holds 12 pens. Sam takes 5 out, then doubles them. How many pens are left?",
         cot="<<12-5=7>> <<7*2=14>>", answer="14"),
]


def make_model(base: str = "tiny-gpt2", seed: int = 0, **kw) -> codi.CODIModel:
    """A CODIModel with random (non-zero) LoRA B matrices, so merging/saving is actually exercised."""
    cfg = codi.CODIConfig(base_model=base, num_latents=kw.pop("num_latents", 3), lora_r=kw.pop("lora_r", 4),
                          lora_dropout=kw.pop("lora_dropout", 0.0), seed=seed, **kw)
    cm = codi.CODIModel.from_config(cfg, device="cpu", dtype="float32")
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return cm.eval()
