"""codi.model: the CODI losses against a direct computation, one teacher pass per step, trainable parts, base checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from codi_fixtures import PROBLEMS, make_model

import codi
from codi.config import CODIConfig
from codi.loop import position_ids


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


def test_loss_parts_match_a_direct_computation(cm):
    """loss() against an independent computation: teacher CE, student CE, distillation at the answer position."""
    cfg = cm.config
    b = cm.make_batch(PROBLEMS)
    with torch.no_grad():
        parts = cm.loss(b)
        t = cm.model(input_ids=b.teacher_ids, attention_mask=b.teacher_mask,
                     position_ids=position_ids(b.teacher_mask, b.teacher_ids.shape[1]), output_hidden_states=True)
        run = cm.run_ids(b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, keep_hidden_states=True)
    labels = b.teacher_labels[:, 1:]
    t_ce = F.cross_entropy(t.logits[:, :-1].transpose(1, 2), labels, ignore_index=-100)
    s_ce = F.cross_entropy(run.logits.transpose(1, 2), b.response_ids.masked_fill(b.response_mask == 0, -100),
                           ignore_index=-100)
    per_layer = []
    for layer in range(cm.n_layers + 1):
        s = torch.stack([run.hidden_states[-1][layer][i, b.student_pos[i]] for i in range(len(b))])
        tt = torch.stack([t.hidden_states[layer][i, b.teacher_pos[i]] for i in range(len(b))])
        per_layer.append(F.smooth_l1_loss(s, tt) / tt.std())
    distill = torch.stack(per_layer).mean()
    assert all(torch.isfinite(v) for v in parts.values())
    torch.testing.assert_close(parts["teacher_ce"], t_ce, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["student_ce"], s_ce, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["distill"], distill, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["total"], t_ce + s_ce + cfg.distill_weight * distill, atol=1e-5, rtol=1e-5)
    assert float(parts["distill"]) > 0


def test_one_teacher_pass_per_step(cm):
    """A step calls the base model k + 3 times: teacher once, prompt, k latents, <eot>+answer."""
    calls = []
    handle = cm.model.get_base_model().register_forward_hook(lambda *a: calls.append(1))
    try:
        cm.loss(cm.make_batch(PROBLEMS[:2]))
    finally:
        handle.remove()
    assert len(calls) == cm.config.num_latents + 3


def test_gradients_reach_only_trainable_parts():
    cm = make_model("tiny-llama", loss_type="mse")
    cm.train()
    cm.loss(cm.make_batch(PROBLEMS))["total"].backward()
    trainable = cm.trainable_parameters()
    assert any("lora_A" in n for n in trainable) and "special" in trainable and "prj.fc_in.weight" in trainable
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable.values())
    assert float(cm.special.grad.abs().sum()) > 0 and float(cm.prj.fc_in.weight.grad.abs().sum()) > 0
    frozen = [p for n, p in cm.named_parameters() if n not in trainable]
    assert frozen and all(p.grad is None for p in frozen)


def test_loss_decreases_on_a_fixed_batch():
    cm = make_model("tiny-gpt2", distill_layers=[1, 2])
    b = cm.make_batch(PROBLEMS)
    opt = torch.optim.AdamW(cm.trainable_parameters().values(), lr=3e-3)
    cm.train()
    first = last = None
    for _ in range(8):
        parts = cm(b)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        first = first or {k: float(v.detach()) for k, v in parts.items()}
        last = {k: float(v.detach()) for k, v in parts.items()}
    assert last["total"] < first["total"] and last["student_ce"] < first["student_ce"]
    assert last["teacher_ce"] < first["teacher_ce"]


def test_frozen_special_rows():
    cm = make_model("tiny-gpt2", train_special_rows=False)
    assert "special" not in cm.trainable_parameters()


def test_other_base_config_is_refused():
    cfg = make_model("tiny-gpt2").config
    with pytest.raises(ValueError, match="another base model"):
        codi.CODIModel.from_config(CODIConfig(**dict(cfg.to_dict(), base_model="tiny-llama")))
