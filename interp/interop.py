"""Hand the same model to TransformerLens (TransformerBridge) or nnsight, so users keep their tools.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> bridge = interp.to_transformer_lens(m)
    >>> logits, tl_cache = bridge.run_with_cache("hello", names_filter=lambda n: n.endswith("hook_resid_post"))
    >>> sorted(tl_cache.keys())
    ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']
    >>> lm = interp.to_nnsight(m)
    >>> saved = {}
    >>> with lm.trace("hello"):
    ...     saved["h"] = lm.model.layers[0].output.save()

Both wrap the SAME module, no copy. TransformerBridge changes it in place: it switches attention to the eager
kernel (float32 results then differ from the default sdpa kernel by ~1e-6..1e-3) and puts its bridge components
around the decoder blocks; `interp.hooks` and `interp.cache` keep working on the bridged model.
Accepted: an `interp.Model`, a raw Hugging Face causal LM with `tokenizer=`, or any object with `.model` (a plain
HF model, e.g. a merged CODI model) and `.tokenizer`. A peft-wrapped model must be merged first (`merge()`).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch

__all__ = ["to_transformer_lens", "to_nnsight"]


def _unwrap(model: Any, tokenizer: Any) -> tuple[torch.nn.Module, Any, Path | None]:
    path = getattr(model, "path", None)
    from transformers import PreTrainedModel

    # interp.Model and codi's MergedCODI carry the HF module in `.model` (an HF model's own `.model` is its trunk)
    if not isinstance(model, PreTrainedModel) and hasattr(model, "model") and hasattr(model, "tokenizer"):
        tokenizer = tokenizer or getattr(model, "tokenizer", None)
        model = model.model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"expected an interp.Model or a Hugging Face causal LM, got {type(model).__name__}.")
    if hasattr(model, "peft_config") or type(model).__name__.startswith("Peft"):
        raise TypeError("this model is wrapped by peft (LoRA); TransformerLens and nnsight need a plain model. "
                        "Call .merge() first (CODIModel.merge() folds the LoRA weights in).")
    if tokenizer is None:
        raise ValueError("pass the model's tokenizer: to_transformer_lens(model, tokenizer) / to_nnsight(model, "
                         "tokenizer), or pass interp.load_model(...) which carries it.")
    has_folder = path is not None and (Path(path) / "config.json").exists()
    return model, tokenizer, Path(path) if has_folder else None


def to_transformer_lens(model: Any, tokenizer: Any = None):
    """A `transformer_lens.model_bridge.TransformerBridge` around the same module (hook names
    `blocks.{l}.hook_resid_pre/mid/post`, `run_with_cache`, `run_with_hooks`).

    >>> import interp
    >>> bridge = to_transformer_lens(interp.load_model("tiny-gpt2"))
    >>> bridge.cfg.n_layers
    2
    """
    from transformer_lens.model_bridge import TransformerBridge

    hf, tok, folder = _unwrap(model, tokenizer)
    tmp = None
    if folder is None:  # the bridge reads config/tokenizer files from a folder: write them to a temporary one
        tmp = tempfile.mkdtemp(prefix="codi-lens-bridge-")
        hf.config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        folder = Path(tmp)
    param = next(hf.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_transformers(str(folder), hf_model=hf, tokenizer=copy.deepcopy(tok),
                                                     device=param.device, dtype=param.dtype)
    if tmp is not None:
        weakref.finalize(bridge, shutil.rmtree, tmp, True)
    return bridge


def to_nnsight(model: Any, tokenizer: Any = None):
    """An nnsight `LanguageModel` wrapping the same module (module tree as in Hugging Face, e.g.
    `lm.model.layers[i].output`, `lm.transformer.h[i].output`).

    Note (nnsight 0.8): the body of `with lm.trace(...)` must live in a source file (not `python -c`), and inside a
    function names assigned in the block are not visible after it: store results into a dict made before it.

    >>> import interp
    >>> lm = to_nnsight(interp.load_model("tiny-gpt2"))
    >>> out = {}
    >>> with lm.trace("hello"):
    ...     out["h0"] = lm.transformer.h[0].output.save()
    >>> out["h0"].shape                                 # [batch, seq, d_model]: block 0's output
    torch.Size([1, 4, 64])
    """
    from nnsight import LanguageModel

    hf, tok, _ = _unwrap(model, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LanguageModel is a deprecated alias of TransformersModel in nnsight 0.8
        return LanguageModel(hf, tokenizer=tok)
