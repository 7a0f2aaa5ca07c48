"""interp.hooks: structural discovery, recording per call, selection on device, early stop, edits, clean removal."""

from __future__ import annotations

import pytest
import torch
from helpers import PROMPTS

import interp
from interp.hooks import decoder_layers, edit_residual, record_residuals, residual_modules


def _tiny(arch: str) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, Qwen2Config

    common = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        head_dim=8,
    )
    cfg = Gemma3TextConfig(**common, sliding_window=4) if arch == "gemma3" else Qwen2Config(**common)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg).eval()


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama", "gemma3", "qwen2", "peft-llama"])
def test_residuals_match_hidden_states_on_every_architecture(arch):
    if arch.startswith("tiny"):
        model = interp.load_model(arch).model
    elif arch == "peft-llama":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            interp.load_model("tiny-llama").model, LoraConfig(r=2, target_modules=["q_proj"])
        )
    else:
        model = _tiny(arch)
    n = interp.hooks.n_layers_of(model)
    assert len(residual_modules(model)) == n + 1 and len(decoder_layers(model)) == n
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode():
        model(input_ids=ids, output_hidden_states=True)  # transformers installs its own output hooks once
        before = _hook_count(model)
        with record_residuals(model, "all") as rec:
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert rec.n_calls == 1 and rec.layers == list(range(n + 1))
    for layer in range(n):  # hidden_states[n] is after the final norm
        torch.testing.assert_close(rec.residuals[layer][0], hs[layer], rtol=0, atol=0)
    assert _hook_count(model) == before


def test_one_entry_per_forward_call_with_kv_cache_and_select():
    m = interp.load_model("tiny-llama")
    ids = m.tokenizer(["hello world"], return_tensors="pt")["input_ids"]
    with (
        torch.inference_mode(),
        record_residuals(
            m.model, [0, 2], select=lambda call, h: None if call else torch.tensor([[0, 2]])
        ) as rec,
    ):
        out = m.model(input_ids=ids, use_cache=True)
        m.model(input_ids=torch.tensor([[7]]), past_key_values=out.past_key_values, use_cache=True)
        full = m.model(
            input_ids=torch.cat([ids, torch.tensor([[7]])], 1), output_hidden_states=True
        ).hidden_states
    assert rec.n_calls == 3
    assert [tuple(t.shape) for t in rec.residuals[2]] == [(1, 2, 64), (1, 1, 64), (1, ids.shape[1] + 1, 64)]
    torch.testing.assert_close(rec.residuals[0][0], full[0][:, [0, 2]], rtol=0, atol=0)
    torch.testing.assert_close(
        rec.residuals[0][1], full[0][:, -1:], rtol=1e-5, atol=1e-5
    )  # cached step == full
    torch.testing.assert_close(rec.residuals[2][1], rec.residuals[2][2][:, -1:], rtol=1e-5, atol=1e-5)


def test_hooks_removed_on_exception_and_early_stop_swallowed():
    m = interp.load_model("tiny-gpt2")
    ids = m.tokenizer(PROMPTS[:1], return_tensors="pt")
    m.model(**ids, output_hidden_states=True)  # transformers installs its own output hooks once
    before = _hook_count(m.model)
    with pytest.raises(RuntimeError, match="boom"):
        with record_residuals(m.model, [1]):
            m.model(**ids)
            raise RuntimeError("boom")
    assert _hook_count(m.model) == before
    result = {}
    with record_residuals(m.model, [0], stop=True) as rec:
        result["out"] = m.model(**ids)
    assert "out" not in result and rec.residuals[0][0].shape[1] == ids["input_ids"].shape[1]
    assert _hook_count(m.model) == before
    # the model still works normally afterwards (no state left by the interrupted forward)
    hs = m.model(**ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(rec.residuals[0][0], hs[0], rtol=0, atol=0)


@pytest.mark.parametrize("layer", [0, 1])
def test_edit_residual_changes_downstream_and_is_seen_by_recording(layer):
    m = interp.load_model("tiny-llama")
    ids = m.tokenizer(PROMPTS[:2], return_tensors="pt", padding=True)
    with torch.inference_mode():
        clean = m.model(**ids, output_hidden_states=True)
        before = _hook_count(m.model)
        calls = []

        def double(h, call):
            calls.append(call)
            return h * 2

        with edit_residual(m.model, layer, double), record_residuals(m.model, [layer, 2]) as rec:
            edited = m.model(**ids)
        assert calls == [0]
        torch.testing.assert_close(rec.residuals[layer][0], clean.hidden_states[layer] * 2, rtol=0, atol=0)
        assert (edited.logits - clean.logits).abs().max() > 1e-3
        # after the block the model is unedited again
        with record_residuals(m.model, [layer]) as r1:
            m.model(**ids)
        torch.testing.assert_close(r1.residuals[layer][0], clean.hidden_states[layer], rtol=0, atol=0)
    assert _hook_count(m.model) == before


def test_out_of_range_layer_names_layer_count():
    m = interp.load_model("tiny-gpt2")
    with pytest.raises(ValueError, match="this model has 2 layers"):
        with record_residuals(m.model, [3]):
            pass
