"""`MergedCODI`: the LoRA folded into a copy of the base weights, same `run` / `generate` as `CODIModel`.

`.model` is a plain Hugging Face causal LM (no peft modules, the base's own vocabulary), so
`interp.to_transformer_lens(merged)` / `interp.to_nnsight(merged)` and hook-based tools can wrap it; the latent loop
still runs on it through `merged.run(...)`.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> merged = cm.merge()
    >>> type(merged.model).__name__
    'LlamaForCausalLM'
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from codi.runner import CODIRunner

__all__ = ["MergedCODI", "merge"]


class MergedCODI(CODIRunner):
    """A CODI model whose LoRA is folded into the base weights (inference and interpretability only).

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> merged = cm.merge()                                         # a MergedCODI
    >>> merged.name, any("lora" in n for n, _ in merged.model.named_modules())
    ('tiny-llama+codi', False)
    >>> ids, mask = cm.tokenize_prompts(["1 + 2 = ?"])
    >>> torch.allclose(merged.run_ids(ids, mask).latents, cm.run_ids(ids, mask).latents, atol=1e-4)
    True
    """

    def __init__(self, model: nn.Module, prj: nn.Module, special: torch.Tensor, tokenizer, config, base_path=None):
        super().__init__()
        self.model = model
        self.prj = prj
        self.special = nn.Parameter(special, requires_grad=False)
        self.tokenizer = tokenizer
        self.config = config
        self.base_path = base_path
        self.requires_grad_(False)

    @property
    def name(self) -> str:
        return f"{self.config.base_model}+codi"

    def save_hf(self, folder: str | os.PathLike) -> Path:
        """Write the merged base as a plain Hugging Face folder (config, safetensors, tokenizer) for tools that
        reload a model from disk. The projection and <bot>/<eot> rows are not part of it."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return folder

    def __repr__(self) -> str:
        c = self.config
        return f"MergedCODI(base={c.base_model!r}, num_latents={c.num_latents}, dtype={self.dtype})"


def merge(cm) -> MergedCODI:
    """Fold `cm`'s LoRA into a deep copy of its weights; `cm` itself is left unchanged and usable.

    Outputs equal the unmerged model's up to float rounding (tests: 1e-4 absolute on float32 hidden states).

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> merged = merge(cm)                                          # the same as cm.merge()
    >>> type(merged.model).__name__, merged.prj is cm.prj, cm.config.finetune
    ('GPT2LMHeadModel', False, 'lora')
    """
    plain = copy.deepcopy(cm.model)
    if cm.config.finetune == "lora":
        plain = plain.merge_and_unload()
    plain.eval()
    prj = copy.deepcopy(cm.prj).eval()
    return MergedCODI(plain, prj, cm.special.detach().clone(), cm.tokenizer, cm.config, cm.base_path)
