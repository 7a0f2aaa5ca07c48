"""codi.checkpoint: save -> load gives identical outputs; peft loads the adapter; bad folders give clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from codi_fixtures import PROBLEMS, QUESTIONS, make_model
from safetensors.torch import load_file, save_file

import codi
import interp


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def saved(request, tmp_path_factory):
    cm = make_model(request.param, seed=3)
    with torch.no_grad():  # make every saved part differ from a fresh model with the same seed
        cm.special.add_(0.5)
        cm.prj.fc_out.bias.add_(0.1)
    folder = cm.save_pretrained(tmp_path_factory.mktemp("ckpt") / "model",
                                extra_files={"training_record.json": json.dumps({"steps": 3})})
    return cm, folder


def _copy(folder, tmp_path, checksums=False):
    """A copy to edit by hand. Without its checksums.json (as after a deliberate hand edit), so that the tests
    below reach the strict key, shape and config checks behind the checksums (tests/codi/test_bad_inputs.py checks
    that an edited file with its checksums in place is refused by name)."""
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    if not checksums:
        (dst / "checksums.json").unlink()
    return dst


@torch.no_grad()
def test_save_load_identical_outputs(saved):
    cm, folder = saved
    loaded = codi.CODIModel.from_pretrained(folder)
    assert loaded.config == cm.config
    a = cm.generate(QUESTIONS, max_new_tokens=5, return_latents=True)
    b = loaded.generate(QUESTIONS, max_new_tokens=5, return_latents=True)
    assert a.texts == b.texts and torch.equal(a.run.response_ids, b.run.response_ids)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.latent_inputs, b.latent_inputs)
    batch = cm.make_batch(PROBLEMS)
    la, lb = cm.loss(batch), loaded.loss(batch)
    assert all(torch.equal(la[k], lb[k]) for k in la)


def test_folder_layout_and_peft_loads_the_adapter(saved):
    from peft import PeftModel

    cm, folder = saved
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["adapter", "checksums.json", "codi_config.json", "projection.safetensors",
                     "special_tokens.safetensors", "tokenizer", "training_record.json"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    assert set(load_file(str(folder / "special_tokens.safetensors"))) == {"bot", "eot"}
    base = interp.load_model(cm.base_name).model
    peft_model = PeftModel.from_pretrained(base, str(folder / "adapter")).eval()
    ids = torch.tensor([[3, 17, 42, 99, 7]])
    with torch.no_grad():
        torch.testing.assert_close(peft_model(input_ids=ids).logits, cm.model(input_ids=ids).logits, atol=0, rtol=0)


def test_save_replaces_a_checkpoint_but_not_other_folders(saved, tmp_path):
    cm, folder = saved
    again = cm.save_pretrained(_copy(folder, tmp_path))  # replacing an existing checkpoint is fine
    assert (again / "codi_config.json").exists() and not (again / "training_record.json").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a CODI checkpoint"):
        cm.save_pretrained(other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="reserved"):
        cm.save_pretrained(tmp_path / "new", extra_files={"pytorch_model.bin": b""})
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("remove", ["projection.safetensors", "adapter/adapter_model.safetensors", "tokenizer"])
def test_missing_file(saved, tmp_path, remove):
    folder = _copy(saved[1], tmp_path)
    target = folder / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(FileNotFoundError, match=f"incomplete: missing.*{remove}"):
        codi.CODIModel.from_pretrained(folder)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "adapter/extra.safetensors"])
def test_foreign_file(saved, tmp_path, name):
    folder = _copy(saved[1], tmp_path)
    (folder / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="foreign files"):
        codi.CODIModel.from_pretrained(folder)


def test_official_or_plain_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="codi.convert"):
        codi.CODIModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        codi.CODIModel.from_pretrained(tmp_path / "nope")


def test_adapter_key_mismatch_shows_a_diff(saved, tmp_path):
    folder = _copy(saved[1], tmp_path)
    path = folder / "adapter" / "adapter_model.safetensors"
    tensors = load_file(str(path))
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    tensors["base_model.model.bogus.lora_A.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(path))
    with pytest.raises(ValueError) as err:
        codi.CODIModel.from_pretrained(folder)
    msg = str(err.value)
    assert "missing keys (1)" in msg and dropped in msg and "unexpected keys (1)" in msg and "bogus" in msg


def test_projection_shape_mismatch(saved, tmp_path):
    folder = _copy(saved[1], tmp_path)
    tensors = load_file(str(folder / "projection.safetensors"))
    tensors["fc_in.bias"] = torch.zeros(3)
    save_file(tensors, str(folder / "projection.safetensors"))
    with pytest.raises(ValueError, match=r"shape mismatches \(1\):\n  fc_in.bias: expected \(64,\), found \(3,\)"):
        codi.CODIModel.from_pretrained(folder)


@pytest.mark.parametrize("edit, msg", [
    (dict(base_model="tiny-llama"), "another base model"),
    (dict(num_latents=0), "at least 1 continuous thought"),
    (dict(lora_r=9), "disagrees"),
])
def test_bad_config(saved, tmp_path, edit, msg):
    cm, folder = saved
    folder = _copy(folder, tmp_path)
    if cm.base_name == "tiny-llama" and "base_model" in edit:
        edit = dict(base_model="tiny-gpt2")
    raw = json.loads((folder / "codi_config.json").read_text())
    (folder / "codi_config.json").write_text(json.dumps(dict(raw, **edit)))
    with pytest.raises(ValueError, match=msg):
        codi.CODIModel.from_pretrained(folder)
