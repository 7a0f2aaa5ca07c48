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

from argcheck import (
    BadArgument,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_ints,
    check_str,
    check_strings,
)
from formats import atomic_write_text, read_json

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

    >>> import tempfile
    >>> cfg = CODIConfig(base_model="tiny-llama", lora_r=8, loss_type="mse")
    >>> path = cfg.save(tempfile.mkdtemp() + "/codi_config.json")
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
        """Check every field's type and range; raise `argcheck.BadArgument` naming the field, the value and a fix.

        >>> CODIConfig("tiny-gpt2", lora_alpha=-5)
        Traceback (most recent call last):
        ...
        argcheck.errors.BadArgument: lora_alpha=-5: must be a finite number > 0. Fix: LoRA scales its update by ...
        """
        check_str("base_model", self.base_model, fix="pass a registry name such as 'smollm2-135m' or a model folder")
        check_int("num_latents", self.num_latents, min=1, max=1024,
                  fix="a CODI model needs at least 1 continuous thought (the paper uses 6); for none, use the base "
                      "model directly")
        for name in ("use_prj", "prj_layer_norm", "distill_div_std", "train_special_rows", "eos_separators",
                     "include_last_cot_step"):
            check_bool(name, getattr(self, name))
        check_int("prj_dim", self.prj_dim, min=1, none_ok=True, fix="use a positive size, or None (= d_model)")
        for name in ("prj_dropout", "lora_dropout"):
            check_float(name, getattr(self, name), min=0, max=1, max_open=True, fix=f"use {name}=0.0 .. 0.5")
        check_choice("finetune", self.finetune, FINETUNE,
                     fix="'lora' trains adapters; 'full' also trains embeddings and norms (small from-scratch bases)")
        check_int("lora_r", self.lora_r, min=1, fix="LoRA rank must be >= 1 (the official scripts use 128)")
        check_float("lora_alpha", self.lora_alpha, min=0, min_open=True,
                    fix="LoRA scales its update by lora_alpha / lora_r; the official scripts use 32")
        if self.lora_target_modules is not None:
            check_strings("lora_target_modules", self.lora_target_modules,
                          fix="pass layer names such as ['q_proj', 'v_proj'], or None to use every Linear layer")
        check_choice("loss_type", self.loss_type, LOSS_TYPES)
        if isinstance(self.distill_layers, str):
            check_choice("distill_layers", self.distill_layers, ["all"], fix="use 'all' or a list of layer indices")
        else:
            check_ints("distill_layers", self.distill_layers, min=0, fix="use 'all' or a non-empty list of layer "
                                                                         "indices 0..n_layers")
        weights = ("teacher_ce_weight", "student_ce_weight", "distill_weight", "latent_distill_weight")
        for name in weights:
            check_float(name, getattr(self, name), min=0, fix=f"use {name}=0 (off) or a positive weight")
        if not any(getattr(self, name) > 0 for name in weights):
            raise BadArgument("student_ce_weight", self.student_ce_weight, "at least one loss weight must be > 0 "
                              "(all are 0: training would change nothing)", "keep the defaults (1.0 each)")
        check_int("seed", self.seed, min=0)
        check_int("max_length", self.max_length, min=8, fix="use e.g. max_length=512")
        for name in ("base_n_layers", "base_d_model", "base_vocab_size"):
            check_int(name, getattr(self, name), min=1, none_ok=True,
                      fix="leave it None; CODIModel.from_config fills it in")
        check_str("base_model_type", self.base_model_type, none_ok=True)
        if not isinstance(self.extra, dict):
            raise BadArgument("extra", self.extra, "must be a dict (free-form notes saved with the config)",
                              "pass extra={} or a dict of JSON values")
        self._validate_text()

    def _validate_text(self) -> None:
        for name in ("prompt_template", "cot_template", "answer_template", "answer_marker"):
            check_str(name, getattr(self, name), nonempty=name != "cot_template")
        for name, slot in (("prompt_template", "{question}"), ("cot_template", "{cot}"),
                           ("answer_template", "{answer}")):
            if slot not in getattr(self, name):
                raise BadArgument(name, getattr(self, name), f"must contain {slot!r}",
                                  f"e.g. {name}={getattr(CODIConfig, name)!r}")
        prefix = self.answer_template.split("{answer}")[0]
        if self.answer_marker not in prefix:
            raise BadArgument("answer_marker", self.answer_marker, f"must appear in answer_template before "
                              f"'{{answer}}' (template: {self.answer_template!r})",
                              "make the marker the text right before the answer, e.g. 'The answer is:'")

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
        """Write the config as JSON, atomically (nothing is written when a value is not JSON)."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CODIConfig:
        """Read a config written by `save` (a damaged file raises ValueError naming it)."""
        d = read_json(path)
        if not isinstance(d, dict):
            raise ValueError(f"{path} holds a JSON {type(d).__name__}, not a CODIConfig object.")
        return cls.from_dict(d)


def lora_targets_for(model) -> list[str]:
    """Names of the Linear (or GPT-2 Conv1D) layers inside the decoder blocks, e.g. ['c_attn', 'c_proj', 'c_fc'].

    >>> from basemodels import load_model
    >>> lora_targets_for(load_model("tiny-gpt2").model)
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
