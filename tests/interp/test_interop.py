"""interp.to_transformer_lens / interp.to_nnsight: the peers' wrappers of the SAME model agree with interp.cache.

TransformerBridge switches the model to eager attention in place, so `interp.cache` is run after bridging (same
kernel); nnsight does not change the model. Both compare real-token cells of left- and right-padded batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import PARITY_MODELS, PROMPTS, TOL, padded_batch, real_rows

import interp
from interp.hooks import decoder_layers


def _close(reference: torch.Tensor, ours: np.ndarray, lengths: list[int], side: str) -> float:
    rows = real_rows(reference.detach().float(), lengths, side)
    return max(float(np.abs(r.numpy() - ours[b, : lengths[b]]).max()) for b, r in enumerate(rows))


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_transformer_bridge_run_with_cache_matches(name, side):
    m = interp.load_model(name, dtype="float32", device="cpu")
    bridge = interp.to_transformer_lens(m)
    assert bridge.cfg.n_layers == m.n_layers
    ours = interp.cache(m, PROMPTS, padding_side=side, progress=False).array()
    ids, mask, pos_ids, lengths = padded_batch(m.tokenizer, PROMPTS, side)
    with torch.inference_mode():
        _, tl = bridge.run_with_cache(
            ids, attention_mask=mask, position_ids=pos_ids, names_filter=lambda n: "hook_resid_p" in n
        )
    for layer in range(m.n_layers + 1):
        key = (
            f"blocks.{layer}.hook_resid_pre" if layer < m.n_layers else f"blocks.{layer - 1}.hook_resid_post"
        )
        assert _close(tl[key], ours[:, layer], lengths, side) < TOL, (key, side)
    for layer in range(1, m.n_layers):  # resid_post of block l-1 is resid_pre of block l: check both names
        assert _close(tl[f"blocks.{layer - 1}.hook_resid_post"], ours[:, layer], lengths, side) < TOL


def _module_path(model: torch.nn.Module, target: torch.nn.Module) -> list[str]:
    return next(name for name, mod in model.named_modules() if mod is target).split(".")


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_nnsight_saved_outputs_match(name, side):
    m = interp.load_model(name, dtype="float32", device="cpu")
    lm = interp.to_nnsight(m)
    ours = interp.cache(m, PROMPTS, padding_side=side, progress=False).array()
    ids, mask, pos_ids, lengths = padded_batch(m.tokenizer, PROMPTS, side)
    blocks = lm
    for part in _module_path(m.model, decoder_layers(m.model)):
        blocks = getattr(blocks, part)
    saved: dict[int, torch.Tensor] = {}
    with lm.trace(dict(input_ids=ids, attention_mask=mask, position_ids=pos_ids)):
        saved[0] = blocks[0].input.save()
        for layer in range(1, m.n_layers + 1):
            saved[layer] = blocks[layer - 1].output.save()
    for layer in range(m.n_layers + 1):
        out = saved[layer] if isinstance(saved[layer], torch.Tensor) else saved[layer][0]
        assert _close(out, ours[:, layer], lengths, side) < TOL, (layer, side)


def test_raw_model_without_folder_and_peft_refused():
    m = interp.load_model("tiny-llama", dtype="float32", device="cpu")
    bridge = interp.to_transformer_lens(
        m.model, m.tokenizer
    )  # no .path: config + tokenizer go to a temp folder
    assert bridge.cfg.d_model == 64
    assert m.tokenizer.padding_side == "right"  # the user's tokenizer is not changed by the bridge
    with pytest.raises(ValueError, match="pass the model's tokenizer"):
        interp.to_nnsight(m.model)
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        interp.load_model("tiny-llama").model, LoraConfig(r=2, target_modules=["q_proj"])
    )
    with pytest.raises(TypeError, match="merge"):
        interp.to_transformer_lens(peft_model, m.tokenizer)
