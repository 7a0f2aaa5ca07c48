"""basemodels.facts: one answer per fact, the same for every way a model can be passed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import codi
from basemodels import facts, is_codi, load_model, pad_id


@pytest.mark.parametrize("name, n_layers, d_model, context", [("tiny-llama", 2, 64, 512), ("tiny-gpt2", 2, 64, 512)])
def test_registry_model_and_its_raw_module_agree(name, n_layers, d_model, context):
    m = load_model(name)
    a, b = facts(m), facts(m.model, m.tokenizer)
    for f in (a, b):
        assert (f.n_layers, f.d_model, f.context_length, f.is_codi) == (n_layers, d_model, context, False)
        assert f.module is m.model and f.tokenizer is m.tokenizer and f.vocab_size == len(m.tokenizer)
        assert f.pad_token_id == m.tokenizer.pad_token_id
    assert a.name == name and m.n_layers == a.n_layers and m.d_model == a.d_model


def test_a_codi_model_reports_its_base_and_says_it_is_codi():
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    f = facts(cm)
    assert f.is_codi and is_codi(cm) and is_codi(cm.merge())
    assert (f.n_layers, f.d_model, f.vocab_size) == (cm.n_layers, cm.d_model, cm.vocab_size)
    assert f.module is cm.model and f.tokenizer is cm.tokenizer and f.name == "tiny-llama+codi"


def test_pad_fallback_is_pad_then_eos_then_zero():
    assert pad_id(SimpleNamespace(pad_token_id=7, eos_token_id=3)) == 7
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=3)) == 3
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0


def test_what_is_not_a_model_is_named():
    assert not is_codi("tiny-llama") and not is_codi(load_model("tiny-llama"))
    with pytest.raises(TypeError, match="str is not a model"):
        facts("tiny-llama")
