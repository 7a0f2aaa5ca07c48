"""`CODIConfig`: every setting of a CODI model in one JSON-round-tripping dataclass.

    >>> from codi import CODIConfig
    >>> cfg = CODIConfig(base_model="tiny-gpt2", num_latents=6)
    >>> CODIConfig.from_dict(cfg.to_dict()) == cfg
    True

Defaults follow the official CODI training scripts (zhenyi4/codi, `scripts/train_*_gsm8k-aug.sh`): LoRA r=128,
alpha=32, dropout 0.1; projection Linear-GELU-Linear + LayerNorm with hidden size = d_model; smooth L1 distillation
over every hidden state, divided by the teacher's std; no extra <eos> separators (`--remove_eos True`); the last
CoT step left out of the teacher's text (`include_last_cot False`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["CODIConfig", "LOSS_TYPES", "FINETUNE", "lora_targets_for"]

LOSS_TYPES = ("smooth_l1", "l1", "mse")
FINETUNE = ("lora", "full")

# Linear (or GPT-2 Conv1D) leaf names inside the decoder blocks, by architecture family.
_KNOWN_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


@dataclass
class CODIConfig:
    """Settings of a CODI model (base, latents, projection, LoRA, losses, text format).

    `distill_layers` indexes HF `hidden_states` (0 = embeddings ... n_layers = after the final norm, as in the
    official code); "all" distills every one of them. `lora_target_modules=None` picks the Linear layers of the
    architecture when the model is built (`CODIModel.from_config`), and the chosen names are written back here.

    >>> cfg = CODIConfig(base_model="tiny-llama", lora_r=8, loss_type="mse")
    >>> path = cfg.save("/tmp/codi_cfg.json")
    >>> CODIConfig.load(path).lora_r
    8
    """

    base_model: str
    num_latents: int = 6
    # projection prj: Dropout -> Linear(d, prj_dim) -> GELU -> Linear(prj_dim, d) [-> LayerNorm(d)]
    use_prj: bool = True
    prj_dim: int | None = None  # None: d_model of the base
    prj_layer_norm: bool = True
    prj_dropout: float = 0.0
    # what trains in the base: "lora" (peft adapters; the base stays frozen) or "full" (every base weight,
    # embeddings and norms included; the checkpoint then carries the whole base, e.g. for from-scratch organisms)
    finetune: str = "lora"
    # LoRA
    lora_r: int = 128
    lora_alpha: float = 32.0
    lora_dropout: float = 0.1
    lora_target_modules: list[str] | None = None  # None: discovered from the architecture
    # losses: total = teacher_ce_weight * teacher CE + student_ce_weight * student CE + distill_weight * distill
    loss_type: str = "smooth_l1"
    distill_layers: list[int] | str = "all"
    distill_div_std: bool = True
    teacher_ce_weight: float = 1.0
    student_ce_weight: float = 1.0
    distill_weight: float = 1.0
    # thought-by-thought distillation: student hidden states (every distilled layer) at thought j onto the
    # teacher's at written CoT token j. Needs a teacher CoT of exactly num_latents tokens between its first and last
    # token (e.g. cot_template "<bot> {cot} <eot>" with one token per step, as the organisms use); 0 = off (CODI).
    latent_distill_weight: float = 0.0
    # <bot>/<eot>: two extra embedding rows kept outside the vocabulary (the LM head never predicts them)
    train_special_rows: bool = True
    seed: int = 0
    # text format. Teacher: prompt + cot + answer + eos. Student: prompt + <bot>, latents, <eot> + answer + eos.
    prompt_template: str = "{question}\n"
    cot_template: str = "{cot}\n"
    answer_template: str = "The answer is: {answer}"
    answer_marker: str = "The answer is:"
    eos_separators: bool = False  # official --remove_eos False: eos after prompt and cot, and after <eot>
    include_last_cot_step: bool = False
    max_length: int = 512
    # filled in by CODIModel.from_config: what the base looked like (checked on load)
    base_model_type: str | None = None  # HF config.model_type, e.g. "gpt2", "llama"
    base_n_layers: int | None = None
    base_d_model: int | None = None
    base_vocab_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field and a fix."""
        if not isinstance(self.base_model, str) or not self.base_model:
            raise ValueError("CODIConfig.base_model must be a model name or folder, e.g. 'smollm2-135m'.")
        if not isinstance(self.num_latents, int) or self.num_latents < 1:
            raise ValueError(f"num_latents={self.num_latents!r}: a CODI model needs at least 1 continuous "
                             f"thought (the paper uses 6). For a model without latents, use the base model directly.")
        if self.finetune not in FINETUNE:
            raise ValueError(f"finetune={self.finetune!r}; choose one of {FINETUNE} ('full' also trains embeddings "
                             f"and norms, for small from-scratch bases).")
        if self.latent_distill_weight < 0:
            raise ValueError(f"latent_distill_weight={self.latent_distill_weight}: use 0 (off) or a positive weight.")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type={self.loss_type!r}; choose one of {LOSS_TYPES}.")
        if self.prj_dim is not None and self.prj_dim < 1:
            raise ValueError(f"prj_dim={self.prj_dim}: use a positive size or None (= d_model).")
        if self.lora_r < 1:
            raise ValueError(f"lora_r={self.lora_r}: LoRA rank must be >= 1.")
        if not 0.0 <= self.lora_dropout < 1.0 or not 0.0 <= self.prj_dropout < 1.0:
            raise ValueError("lora_dropout and prj_dropout must be in [0, 1).")
        if isinstance(self.distill_layers, str):
            if self.distill_layers != "all":
                raise ValueError(f"distill_layers={self.distill_layers!r}: use 'all' or a list of ints.")
        elif not self.distill_layers or not all(isinstance(x, int) and x >= 0 for x in self.distill_layers):
            raise ValueError(f"distill_layers={self.distill_layers!r}: use 'all' or a non-empty list of "
                             f"layer indices 0..n_layers.")
        self._validate_text()

    def _validate_text(self) -> None:
        if "{question}" not in self.prompt_template or "{cot}" not in self.cot_template:
            raise ValueError("prompt_template must contain '{question}' and cot_template '{cot}'.")
        if "{answer}" not in self.answer_template:
            raise ValueError(f"answer_template={self.answer_template!r} must contain '{{answer}}'.")
        prefix = self.answer_template.split("{answer}")[0]
        if not self.answer_marker or self.answer_marker not in prefix:
            raise ValueError(f"answer_marker={self.answer_marker!r} must appear in answer_template before "
                             f"'{{answer}}' (template: {self.answer_template!r}).")

    def layers_to_distill(self, n_layers: int) -> list[int]:
        """Resolve `distill_layers` for a base with `n_layers` blocks (HF hidden_states indices 0..n_layers)."""
        if self.distill_layers == "all":
            return list(range(n_layers + 1))
        bad = [x for x in self.distill_layers if x > n_layers]
        if bad:
            raise ValueError(f"distill_layers {bad} do not exist: the base has hidden states 0..{n_layers}.")
        return list(self.distill_layers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CODIConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown CODIConfig fields {unknown}; known fields: {sorted(known)}. "
                             f"Was this file written by a newer codi-lens?")
        return cls(**d)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2)  # serialise before touching the disk
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CODIConfig:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}).") from err
        return cls.from_dict(d)


def lora_targets_for(model) -> list[str]:
    """Names of the Linear (or GPT-2 Conv1D) layers inside the decoder blocks, e.g. ['c_attn', 'c_proj', 'c_fc'].

    >>> import interp
    >>> lora_targets_for(interp.load_model("tiny-gpt2").model)
    ['c_attn', 'c_proj', 'c_fc']
    """
    import torch
    from transformers.pytorch_utils import Conv1D

    names: list[str] = []
    for full, mod in model.named_modules():
        if not isinstance(mod, (torch.nn.Linear, Conv1D)):
            continue
        leaf = full.rsplit(".", 1)[-1]
        inside_block = any(p.isdigit() for p in full.split("."))  # blocks live in a numbered ModuleList
        if inside_block and leaf not in names:
            names.append(leaf)
    if not names:
        mtype = getattr(getattr(model, "config", None), "model_type", "?")
        raise ValueError(f"found no Linear layers inside the decoder blocks of a {mtype!r} model; set "
                         f"CODIConfig.lora_target_modules by hand (known: {_KNOWN_TARGETS}).")
    return names
