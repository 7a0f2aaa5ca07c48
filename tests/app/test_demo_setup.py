"""The sizes of `codi-lens demo` and where its CODI model comes from (app/demo_setup.py): the two presets, the size
checks `run_demo` makes before anything is written, and `get_codi_model` on tiny-llama (given checkpoint, untrained,
trained now, reused by the next run, refused when the steps differ)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import codi
from app.demo import run_demo
from app.demo_setup import SEEDS, DemoSize, get_codi_model, shipped_checkpoint
from codi.train import TrainRecord


def test_presets_and_their_dict():
    full, quick = DemoSize.full(), DemoSize.quick()
    assert full == DemoSize() and full.n_deception == 120 and full.ablate_modes == ("zero", "mean")
    changed = {f.name for f in dataclasses.fields(DemoSize) if getattr(full, f.name) != getattr(quick, f.name)}
    assert changed == {"train_steps", "train_batch", "n_train", "n_eval", "cot_tokens", "n_deception", "n_values",
                       "n_ablate", "layer_stride", "folds", "control", "ablate_modes", "n_organism",
                       "n_organism_pairs", "behaviour_conditions", "n_behaviour", "behaviour_layer_stride", "n_facts",
                       "n_roleplay", "transfer_layer_stride"}
    assert (quick.n_deception, quick.layer_stride, quick.ablate_modes, quick.behaviour_conditions) == \
        (48, 6, ("zero",), ("lie",))
    d = quick.to_dict()
    assert json.loads(json.dumps(d)) == d                                  # JSON as is (tuples become lists)
    assert d["Cs"] == [1e-3, 1e-1, 10.0] and d["ablate_modes"] == ["zero"] and d["behaviour_conditions"] == ["lie"]
    back = DemoSize(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    assert back == quick
    assert len(set(SEEDS.values())) == len(SEEDS)                           # no two stages share problems


BAD_SIZES = [({"n_deception": 7}, "n_deception=7"), ({"n_deception": 6}, "n_deception=6"),
             ({"n_values": 1}, "n_values, n_eval and n_ablate"), ({"n_ablate": 0}, "n_values, n_eval and n_ablate"),
             ({"ablate_modes": ("mean",)}, "include 'zero'"), ({"n_facts": 9}, "n_facts=9"),
             ({"n_roleplay": 4}, "n_roleplay=4"), ({"n_behaviour": 7}, "n_behaviour=7"),
             ({"behaviour_conditions": ("truth",)}, "use 'lie' and/or 'none'"),
             ({"behaviour_conditions": ()}, "behaviour_conditions=()")]


@pytest.mark.parametrize("over, named", BAD_SIZES, ids=[next(iter(o)) + "=" + str(next(iter(o.values())))
                                                        for o, _ in BAD_SIZES])
def test_run_demo_refuses_a_bad_size_before_anything_is_written(refused, over, named):
    refused(lambda: run_demo("tiny-llama", out="runs/demo", quick=True, verbose=False, **over), ValueError, named)


def test_an_unknown_size_field_is_refused(refused):
    refused(lambda: run_demo("tiny-llama", out="runs/demo", quick=True, n_questions=8), TypeError, "n_questions")


def test_shipped_checkpoint():
    folder = shipped_checkpoint("smollm2-135m")
    assert folder == Path(codi.__file__).parent / "pretrained" / "smollm2-135m-arith"
    assert (folder / "codi_config.json").is_file()
    assert shipped_checkpoint("tiny-llama") is None


def _same_weights(a: codi.CODIModel, b: codi.CODIModel) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_given_checkpoint_is_loaded(tmp_path, refused):
    torch.manual_seed(0)
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=2))
    folder = cm.save_pretrained(tmp_path / "ckpt")
    got, how = get_codi_model("tiny-llama", tmp_path / "out", str(folder), DemoSize.quick())
    assert how == f"checkpoint {folder}" and not got.training and _same_weights(got, cm)
    refused(lambda: get_codi_model("tiny-llama", tmp_path / "out", str(tmp_path / "nope"), DemoSize.quick()),
            FileNotFoundError, "--checkpoint", "no codi_config.json")


def test_untrained_then_trained_now_then_reused(tmp_path, snapshot):
    size = dataclasses.replace(DemoSize.quick(), train_steps=0)
    cm, how = get_codi_model("tiny-llama", tmp_path, None, size)
    assert how == "untrained (fresh LoRA + projection, 0 training steps)" and not any(tmp_path.iterdir())
    assert (cm.config.num_latents, cm.config.lora_r, cm.config.lora_alpha) == (6, 32, 8.0)
    said: list[str] = []
    size = dataclasses.replace(DemoSize.quick(), train_steps=1, n_train=8)
    trained, how = get_codi_model("tiny-llama", tmp_path, None, size, say=said.append)
    assert how == "trained 1 steps now" and "training 1 steps x batch 2" in said[0]
    assert (tmp_path / "codi-model" / "codi_config.json").is_file()
    again, how = get_codi_model("tiny-llama", tmp_path, None, size)
    assert how == "trained 1 steps by an earlier demo run" and _same_weights(again, trained)
    rec = TrainRecord.load(tmp_path / "codi-model")
    assert rec.step == 1 and rec.finished
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="trained for 1 steps, not 3; pass --train-steps 1"):
        get_codi_model("tiny-llama", tmp_path, None, dataclasses.replace(size, train_steps=3))
    assert snapshot(tmp_path) == before
