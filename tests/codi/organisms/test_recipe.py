"""codi.organisms.recipe: a CODI model on a from-scratch base (full fine-tuning, thought distillation) and the
accuracy of its thoughts under ablation."""

from __future__ import annotations

import pytest
import torch

import codi
from codi.organisms import tasks
from codi.organisms.base import BaseSpec, train_base
from codi.organisms.recipe import ablation_accuracy, codi_from_base

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


def test_full_finetune_checkpoint_round_trip_and_latent_distill(tmp_path):
    """finetune="full" saves the whole base (no adapter) and reloads to the same outputs; the thought-distillation
    term equals its definition and refuses CoTs that do not line up with the thoughts."""
    task = tasks.pointer_chase(2, nodes=4, names=5)
    model, tok, _ = train_base(task, BaseSpec(layers=1, d_model=32, heads=2, mlp=64, steps=2), progress=lambda s: None,
                               eval_every=10)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    cm = codi_from_base(task, tmp_path / "base")
    assert cm.config.finetune == "full" and cm.config.latent_distill_weight == 1.0
    assert all(p.requires_grad for p in cm.model.parameters())
    probs = task.make(8, seed=0)
    batch = cm.make_batch(probs)
    parts = cm.loss(batch)
    teacher = cm.teacher_forward(batch)
    run = cm.run_ids(batch.prompt_ids, batch.prompt_mask, batch.response_ids, batch.response_mask,
                     keep_hidden_states=True)
    rows = torch.arange(len(batch))
    ref = []
    assert cm.config.num_latents == 2                     # one thought per hop, the last one included
    for j in range(2):
        for layer in cm.config.layers_to_distill(cm.n_layers):
            t = teacher.hidden_states[layer][rows, batch.teacher_cot[:, 0] + 1 + j]
            ref.append(torch.nn.functional.smooth_l1_loss(run.hidden_states[1 + j][layer][:, 0], t) / t.std())
    torch.testing.assert_close(parts["latent_distill"], torch.stack(ref).mean(), atol=1e-5, rtol=1e-5)
    total = parts["teacher_ce"] + parts["student_ce"] + parts["distill"] + parts["latent_distill"]
    torch.testing.assert_close(parts["total"].detach(), total, atol=1e-5, rtol=1e-5)

    folder = cm.save_pretrained(tmp_path / "codi")
    assert (folder / "model").is_dir() and not (folder / "adapter").exists()
    back = codi.CODIModel.from_pretrained(folder)
    a = cm.generate([p.question for p in probs], max_new_tokens=2, return_latents=True)
    b = back.generate([p.question for p in probs], max_new_tokens=2, return_latents=True)
    assert a.answers == b.answers
    torch.testing.assert_close(a.latent_inputs, b.latent_inputs)

    three = codi_from_base(task, tmp_path / "base", num_latents=3)
    with pytest.raises(ValueError, match="num_latents \\+ 2 = 5 tokens .* has 4"):
        three.loss(three.make_batch(probs))


def test_ablation_kinds_are_checked():
    cm, make = codi.organisms.load("pointer3")
    with pytest.raises(ValueError, match="kind='half'"):
        ablation_accuracy(cm, make(4), "half")
