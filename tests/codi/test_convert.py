"""codi.convert: our model -> official CODI layout -> convert -> identical outputs; weights-only pickles; errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from codi_fixtures import QUESTIONS, make_model
from safetensors.torch import load_file, save_file

import codi


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    cm = make_model(request.param, seed=7, num_latents=4)
    with torch.no_grad():
        cm.special.add_(0.3)
    return cm


def test_official_layout(cm):
    sd = codi.official_state_dict(cm)
    v, d = cm.vocab_size, cm.d_model
    emb = [k for k, t in sd.items() if t.dim() == 2 and t.shape == (v + 3, d)]
    assert emb and all(k.startswith("codi.base_model.model.") for k in emb)
    assert torch.equal(sd[emb[0]][v + 1], cm.special[0].detach()) and torch.equal(sd[emb[0]][v + 2], cm.special[1])
    assert {k for k in sd if k.startswith("prj.")} == {"prj.1.weight", "prj.1.bias", "prj.3.weight", "prj.3.bias",
                                                       "prj.ln.weight", "prj.ln.bias"}
    assert any(".lora_A.default.weight" in k for k in sd) and any(".base_layer.weight" in k for k in sd)


@pytest.mark.parametrize("fmt", ["model.safetensors", "pytorch_model.bin"])
@torch.no_grad()
def test_round_trip_identical_outputs(cm, tmp_path, fmt):
    sd = codi.official_state_dict(cm)
    if fmt.endswith(".safetensors"):
        save_file(sd, str(tmp_path / fmt))
    else:
        torch.save(sd, tmp_path / fmt)
    out = tmp_path / "converted"
    conv = codi.convert(tmp_path, base_model=cm.base_name, num_latents=4, lora_alpha=cm.config.lora_alpha, out=out)
    assert (conv.config.lora_r, conv.config.lora_target_modules, conv.config.prj_dim) == (
        cm.config.lora_r, cm.config.lora_target_modules, cm.config.prj_dim)
    a = cm.generate(QUESTIONS, max_new_tokens=5, return_latents=True)
    b = conv.generate(QUESTIONS, max_new_tokens=5, return_latents=True)
    assert a.texts == b.texts and torch.equal(a.latents, b.latents) and torch.equal(a.latent_inputs, b.latent_inputs)
    c = codi.CODIModel.from_pretrained(out).generate(QUESTIONS, max_new_tokens=5, return_latents=True)
    assert torch.equal(c.latents, a.latents)
    # and back: exporting the converted model reproduces the file
    again = codi.official_state_dict(conv)
    assert sorted(again) == sorted(sd) and all(torch.equal(again[k], sd[k]) for k in sd)


def test_bf16_checkpoint_is_accepted(cm, tmp_path):
    save_file(codi.official_state_dict(cm, dtype=torch.bfloat16), str(tmp_path / "model.safetensors"))
    conv = codi.convert(tmp_path / "model.safetensors", base_model=cm.base_name, lora_alpha=cm.config.lora_alpha)
    lora = {k: v for k, v in cm.model.named_parameters() if "lora_B" in k}
    for k, p in conv.model.named_parameters():
        if k in lora:
            torch.testing.assert_close(p, lora[k].to(torch.bfloat16).float(), atol=0, rtol=0)


def test_wrong_base_model(cm, tmp_path):
    save_file(codi.official_state_dict(cm), str(tmp_path / "model.safetensors"))
    other = "tiny-llama" if cm.base_name == "tiny-gpt2" else "tiny-gpt2"
    with pytest.raises(ValueError):
        codi.convert(tmp_path, base_model=other)


def test_changed_base_weights_are_detected(tmp_path):
    cm = make_model("tiny-llama")
    sd = codi.official_state_dict(cm)
    key = next(k for k in sd if k.endswith("mlp.down_proj.base_layer.weight"))
    sd[key] = sd[key] + 0.1
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="not trained on base 'tiny-llama'.*base weights differ"):
        codi.convert(tmp_path, base_model="tiny-llama")


def test_pickles_are_read_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"codi.x": Evil()}, f)
    with pytest.raises(ValueError, match="weights_only=True"):
        codi.convert(tmp_path, base_model="tiny-gpt2")


def test_not_an_official_checkpoint(tmp_path):
    save_file({"transformer.wte.weight": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected key 'transformer.wte.weight'"):
        codi.convert(tmp_path, base_model="tiny-gpt2")
    save_file({"codi.base_model.model.transformer.wte.weight": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="no LoRA weights"):
        codi.convert(tmp_path, base_model="tiny-gpt2")
    with pytest.raises(FileNotFoundError):
        codi.convert(tmp_path / "empty", base_model="tiny-gpt2")


def test_safetensors_file_reads_back(cm, tmp_path):
    sd = codi.official_state_dict(cm)
    save_file(sd, str(tmp_path / "m.safetensors"))
    assert set(load_file(str(tmp_path / "m.safetensors"))) == set(sd)
