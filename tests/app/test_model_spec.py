"""The model-spec loader of `codi-lens cache --model` (app/model_spec.py)."""

from __future__ import annotations

import json

import pytest

import codi
import interp
from app.model_spec import load_for_cache


def test_codi_folder_whose_base_model_is_missing(tmp_path):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=2))
    folder = cm.save_pretrained(tmp_path / "ckpt")
    cfg = json.loads((folder / "codi_config.json").read_text())
    cfg["base_model"] = str(tmp_path / "moved-away-base")
    (folder / "codi_config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        FileNotFoundError, match="trained on the base model .*moved-away-base.* not available"
    ):
        load_for_cache(folder)
    assert isinstance(load_for_cache("tiny-gpt2"), interp.Model)
