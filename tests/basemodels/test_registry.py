"""basemodels.registry: the offline names, their rows, the local folders, seeded random weights, devices and dtypes.

The real-weight names (smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b) are tested where they are used
(`slow` tests); here only what loads instantly.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from basemodels.download import GGUFSpec
from basemodels.registry import (
    MODELS,
    RandomSpec,
    cache_home,
    check_device,
    check_dtype,
    known_models,
    load_model,
    model_info,
    resolve_model_path,
)


def test_every_name_has_a_row_that_says_what_it_is():
    assert known_models() == list(MODELS)
    rows = {r["name"]: r for r in model_info()}
    assert list(rows) == known_models()
    for name, spec in MODELS.items():
        row = rows[name]
        assert (row["n_layers"], row["d_model"]) == (spec.n_layers, spec.d_model)
        if isinstance(spec, GGUFSpec):
            assert row["kind"] == "real weights" and row["size_mb"] == spec.approx_mb > 0
        else:
            assert isinstance(spec, RandomSpec) and row["kind"] == "random init" and row["size_mb"] == 0
        assert row["present"] == (cache_home() / "models" / name / "config.json").exists()
    assert (rows["smollm2-135m"]["n_layers"], rows["smollm2-135m"]["d_model"]) == (30, 576)


@pytest.mark.parametrize("name, cls, n_layers", [("tiny-gpt2", "GPT2LMHeadModel", 2),
                                                 ("tiny-llama", "LlamaForCausalLM", 2)])
def test_random_init_names_load_the_same_weights_every_time(name, cls, n_layers):
    a, b = load_model(name, device="cpu"), load_model(name, device="cpu")
    assert type(a.model).__name__ == cls and (a.n_layers, a.d_model) == (n_layers, 64) and a.name == name
    assert a.path == resolve_model_path(name) == cache_home() / "models" / name
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.tokenizer.pad_token is not None and len(a.tokenizer) == a.model.config.vocab_size


def test_a_local_folder_loads_as_the_same_model(tmp_path):
    m = load_model("tiny-llama", device="cpu")
    m.model.save_pretrained(tmp_path / "copy")
    m.tokenizer.save_pretrained(tmp_path / "copy")
    back = load_model(tmp_path / "copy", device="cpu")
    assert back.name == "copy" and back.path == tmp_path / "copy" and (back.n_layers, back.d_model) == (2, 64)
    ids = m.tokenizer("The capital of France is", return_tensors="pt").input_ids
    torch.testing.assert_close(back.model(ids).logits, m.model(ids).logits, atol=0, rtol=0)
    ref = AutoModelForCausalLM.from_pretrained(tmp_path / "copy")                     # the plain HF load
    torch.testing.assert_close(back.model(ids).logits, ref(ids).logits, atol=0, rtol=0)


def test_dtype_and_device_defaults_and_names():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert check_dtype(None, torch.device("cpu")) is torch.float32
    assert check_dtype(None, torch.device("cuda")) is torch.bfloat16
    assert check_dtype("float16", torch.device("cpu")) is torch.float16
    assert check_dtype(torch.float64, torch.device("cpu")) is torch.float64
    m = load_model("tiny-gpt2", dtype="bfloat16", device="cpu")
    assert m.dtype is torch.bfloat16 and m.device == torch.device("cpu")
