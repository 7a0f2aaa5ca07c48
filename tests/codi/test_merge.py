"""codi.merge: merged == unmerged (float32, atol 1e-5 on latents/logits), plain HF model, wrappable by TL/nnsight."""

from __future__ import annotations

import pytest
import torch
from codi_fixtures import QUESTIONS, make_model

import interp

TOL = 1e-5  # float32 CPU: folding W + (alpha/r) B A into W changes rounding only


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def pair(request):
    cm = make_model(request.param, seed=5)
    return cm, cm.merge()


@torch.no_grad()
def test_merged_equals_unmerged(pair):
    cm, merged = pair
    a = cm.generate(QUESTIONS, max_new_tokens=6, return_latents=True)
    b = merged.generate(QUESTIONS, max_new_tokens=6, return_latents=True)
    assert a.texts == b.texts and torch.equal(a.run.response_ids, b.run.response_ids)
    torch.testing.assert_close(b.latents, a.latents, atol=TOL, rtol=0)
    torch.testing.assert_close(b.latent_inputs, a.latent_inputs, atol=TOL, rtol=0)
    ra = cm.run(QUESTIONS, responses=["The answer is: 1"] * 3, keep_hidden_states=True)
    rb = merged.run(QUESTIONS, responses=["The answer is: 1"] * 3, keep_hidden_states=True)
    torch.testing.assert_close(rb.logits, ra.logits, atol=TOL, rtol=0)
    for ha, hb in zip(ra.hidden_states[-1], rb.hidden_states[-1]):
        torch.testing.assert_close(hb, ha, atol=TOL, rtol=0)
    # the LoRA matters: without it the outputs differ
    with cm.model.disable_adapter():
        rc = cm.run(QUESTIONS, responses=["The answer is: 1"] * 3)
    assert (rc.logits - ra.logits).abs().max() > 1e-3


def test_merged_is_a_plain_hf_model_and_the_original_is_untouched(pair):
    cm, merged = pair
    assert type(merged.model).__name__ in ("GPT2LMHeadModel", "LlamaForCausalLM")
    assert not any("lora" in n for n, _ in merged.model.named_parameters())
    assert any("lora" in n for n, _ in cm.model.named_parameters())  # cm still has its adapter
    assert merged.model.get_input_embeddings().weight.shape[0] == cm.vocab_size  # base vocabulary kept
    assert (merged.n_layers, merged.d_model, merged.base_name, merged.config) == (
        cm.n_layers, cm.d_model, cm.base_name, cm.config)
    assert not any(p.requires_grad for p in merged.parameters())


@torch.no_grad()
def test_transformer_lens_and_nnsight_wrap_the_merged_model(pair):
    """TransformerBridge on merged.model: resid_post of the last block equals HF's hidden state (pre final norm)."""
    cm, merged = pair
    ids = cm.tokenizer("Tom has 3 apples.", return_tensors="pt").input_ids
    ref = merged.model(input_ids=ids, output_hidden_states=True).hidden_states
    # explicit (HF module, tokenizer) form: interp.interop._unwrap does not unwrap nn.Module objects with `.model`
    lm = interp.to_nnsight(merged.model, merged.tokenizer)
    assert type(lm).__name__ in ("LanguageModel", "TransformersModel")
    bridge = interp.to_transformer_lens(merged.model, merged.tokenizer)
    _, cache = bridge.run_with_cache(ids, names_filter=lambda n: n.endswith("hook_resid_post"))
    # layer 1 = after block 0 (un-normed in both); TL's bridge switches to eager attention (~1e-6 differences)
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], ref[1], atol=1e-4, rtol=0)
    # the latent loop still runs on the bridged module
    run = merged.run(QUESTIONS[:1], max_new_tokens=2)
    assert run.latents.shape == (1, cm.config.num_latents, cm.d_model)
