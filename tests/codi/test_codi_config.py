"""codi.config: CODIConfig's JSON round trip and errors, LoRA targets per architecture.

(Named test_codi_config.py: tests/grids/test_config.py tests grids.config, and pytest imports test files by basename.)
"""

from __future__ import annotations

import json

import pytest

import interp
from codi.config import CODIConfig, lora_targets_for


def test_config_json_round_trip(tmp_path):
    cfg = CODIConfig("tiny-llama", num_latents=4, lora_target_modules=["q_proj"], distill_layers=[0, 2],
                     loss_type="l1", extra={"note": "x"})
    assert CODIConfig.load(cfg.save(tmp_path / "c.json")) == cfg
    assert CODIConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown CODIConfig fields"):
        CODIConfig.from_dict(dict(cfg.to_dict(), lr=3e-3))


@pytest.mark.parametrize("kw, msg", [
    (dict(num_latents=0), "at least 1 continuous thought"),
    (dict(loss_type="kl"), "loss_type"),
    (dict(answer_template="Result {answer}"), "answer_marker"),
    (dict(distill_layers="some"), "distill_layers"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        CODIConfig("tiny-gpt2", **kw)


def test_lora_targets_per_architecture():
    assert lora_targets_for(interp.load_model("tiny-gpt2").model) == ["c_attn", "c_proj", "c_fc"]
    assert lora_targets_for(interp.load_model("tiny-llama").model) == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
