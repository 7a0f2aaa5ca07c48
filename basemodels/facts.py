"""Model facts, answered once: the HF module, tokenizer, sizes, context length, text config, pad id, is-CODI.

Every tool that needs one of these facts asks `facts(model)`; nothing else looks up a text config, guesses a pad
token or tests whether a model is a CODI runner.

    >>> from basemodels import load_model
    >>> f = facts(load_model("tiny-llama"))
    >>> (f.n_layers, f.d_model, f.vocab_size, f.context_length, f.is_codi)
    (2, 64, 512, 512, False)

A CODI model (`codi.CODIModel` / `codi.MergedCODI`) answers with its base's facts and `is_codi=True`; its class
carries `IS_CODI_RUNNER = True` (this leaf cannot import codi, so the marker is the contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ModelFacts", "facts", "text_config", "pad_id", "context_length", "is_codi", "CODI_MARKER"]

CODI_MARKER = "IS_CODI_RUNNER"  # class attribute set to True by codi.runner.CODIRunner
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length")


def text_config(config: Any) -> Any:
    """The language-model part of a HF config (multimodal configs nest it; plain ones are it).

    >>> from basemodels import load_model
    >>> text_config(load_model("tiny-gpt2").model.config).n_layer
    2
    """
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def context_length(config: Any) -> int | None:
    """How many positions the model takes (None when its config does not say).

    >>> from basemodels import load_model
    >>> context_length(load_model("tiny-gpt2").model.config)
    512
    """
    cfg = text_config(config)
    for key in _CONTEXT_KEYS:
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    return None


def pad_id(tokenizer: Any) -> int:
    """The id that pads batches: the pad token, else eos, else 0 (the project's one fallback; padded cells are
    always masked, so the choice never changes a result).

    >>> from basemodels import load_model
    >>> pad_id(load_model("tiny-gpt2").tokenizer)
    0
    """
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if value is not None:
            return int(value)
    return 0


def is_codi(model: Any) -> bool:
    """True for a CODI runner (`codi.CODIModel`, `codi.MergedCODI`): anything whose class sets `IS_CODI_RUNNER`.

    >>> from basemodels import load_model
    >>> is_codi(load_model("tiny-gpt2")), is_codi("tiny-gpt2")
    (False, False)
    """
    return getattr(type(model), CODI_MARKER, False) is True


@dataclass(frozen=True)
class ModelFacts:
    """What tools need to know of a model, in one place (see `facts`).

    >>> from basemodels import load_model
    >>> f = facts(load_model("tiny-gpt2", device="cpu"))
    >>> f.name, f.text_config.model_type, f.pad_token_id, f.device.type, f.dtype
    ('tiny-gpt2', 'gpt2', 0, 'cpu', torch.float32)
    """

    module: torch.nn.Module  # the HF causal LM that hooks attach to (a CODI model's base, peft-wrapped or merged)
    tokenizer: Any
    name: str
    n_layers: int
    d_model: int
    vocab_size: int  # rows of the LM head that are real tokens: the tokenizer's size (a CODI model: its base's)
    context_length: int | None
    text_config: Any
    is_codi: bool
    pad_token_id: int

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype


def facts(model: Any, tokenizer: Any = None) -> ModelFacts:
    """The facts of a registry `Model`, a CODI model, or a raw HF causal LM (then pass `tokenizer=`).

    >>> from basemodels import load_model
    >>> m = load_model("tiny-gpt2")
    >>> facts(m).name, facts(m.model, m.tokenizer).n_layers      # a raw module is named by its config's path
    ('tiny-gpt2', 2)
    """
    codi = is_codi(model)
    if codi:
        module, tok = model.model, model.tokenizer
        name = f"{model.config.base_model}+codi"
    elif isinstance(getattr(model, "model", None), torch.nn.Module) and hasattr(model, "tokenizer"):
        module, tok, name = model.model, model.tokenizer, str(getattr(model, "name", ""))  # a registry Model
    elif isinstance(model, torch.nn.Module) and hasattr(model, "config"):
        module, tok = model, None
        name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
    else:
        raise TypeError(f"{type(model).__name__} is not a model: pass interp.load_model(...), a CODI model, or a "
                        f"Hugging Face causal LM with tokenizer=.")
    tok = tokenizer if tokenizer is not None else tok
    cfg = text_config(module.config)
    name = name or str(getattr(module.config, "_name_or_path", "") or type(module).__name__)
    vocab = int(model.vocab_size) if codi else len(tok) if tok is not None else int(cfg.vocab_size)
    return ModelFacts(module=module, tokenizer=tok, name=name, n_layers=int(cfg.num_hidden_layers),
                      d_model=int(cfg.hidden_size), vocab_size=vocab, context_length=context_length(cfg),
                      text_config=cfg, is_codi=codi, pad_token_id=pad_id(tok) if tok is not None else 0)
