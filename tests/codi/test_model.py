"""codi.model / codi.batch / codi.config: losses, distillation position, config, trainable parts, errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from codi_fixtures import PROBLEMS, make_model

import codi
import interp
from codi.batch import answer_tokens, extract_answer, make_batch
from codi.config import CODIConfig, lora_targets_for
from codi.loop import position_ids


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


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


def test_distillation_position_from_offsets():
    gpt = interp.load_model("tiny-gpt2").tokenizer
    ids, pos = answer_tokens(gpt, "The answer is: 18", "The answer is:")
    assert gpt.convert_ids_to_tokens(ids)[pos] == ":" and gpt.decode(ids[pos + 1:]) == " 18"
    with pytest.raises(ValueError, match=r"not found in the answer text 'Result: 18'"):
        answer_tokens(gpt, "Result: 18", "The answer is:")
    with pytest.raises(ValueError, match="merges the end of the answer marker"):
        answer_tokens(gpt, "The answer is: 18", "The answer i")  # 'Ġis' straddles the marker's end
    with pytest.raises(ValueError, match="nothing follows"):
        answer_tokens(gpt, "The answer is: ", "The answer is:")


@pytest.mark.slow
def test_distillation_position_real_tokenizer():
    """SmolLM2 splits ' 18' into 'Ġ', '1', '8': the position is the lone space (the official '+1' for llama)."""
    tok = interp.load_model("smollm2-135m").tokenizer
    b = make_batch(tok, CODIConfig("smollm2-135m"), PROBLEMS)
    for i in range(len(PROBLEMS)):
        t = b.teacher_ids[i].tolist()
        p = int(b.teacher_pos[i])
        assert tok.convert_ids_to_tokens(t[p]) == "Ġ"
        assert tok.decode(t[p + 1:p + 2]) == PROBLEMS[i]["answer"][0]
        s = b.response_ids[i].tolist()
        sp = int(b.student_pos[i]) - 1  # student_pos counts the <eot> input at 0
        assert s[sp] == t[p] and s[sp + 1] == t[p + 1]


def test_make_batch_layout(cm):
    b = cm.make_batch(PROBLEMS)
    tok = cm.tokenizer
    for i, p in enumerate(PROBLEMS):
        n = int(b.teacher_mask[i].sum())
        text = tok.decode(b.teacher_ids[i, :n])
        steps = p["cot"].split()[:-1]  # the official code leaves the last CoT step out of the teacher's text
        assert text == f"{p['question']}\n" + (" ".join(steps) + "\n" if steps else "") + \
            f"The answer is: {p['answer']}{tok.eos_token}"
        assert tok.decode(b.teacher_ids[i, b.teacher_pos[i] + 1:n - 1]).strip() == p["answer"]
        # the answer part is the same token sequence in teacher and student
        m = int(b.response_mask[i].sum())
        assert b.response_ids[i, :m].tolist() == b.teacher_ids[i, n - m:n].tolist()
        assert int(b.student_pos[i]) - 1 == int(b.teacher_pos[i]) - (n - m)
        assert (b.teacher_labels[i, :n - m - len(steps and tok(" ".join(steps) + "\n").input_ids)] == -100).all()
    assert b.prompt_mask[:, -1].all()  # left-padded


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


def test_generate_outputs(cm):
    out = cm.generate(["Tom has 3 apples.", "Mia has 7 coins. She loses 4."], max_new_tokens=5, top_k_tokens=4)
    k = cm.config.num_latents
    assert len(out.answers) == 2 and len(out.texts) == 2
    assert out.latents.shape == out.latent_inputs.shape == (2, k, cm.d_model)
    assert out.top_token_ids.shape == (2, k, 4) and len(out.top_tokens[1][k - 1]) == 4
    head = cm.model.get_output_embeddings()
    probs = torch.softmax(head(out.latents[1, 0]), -1)
    assert int(out.top_token_ids[1, 0, 0]) == int(probs.argmax())
    torch.testing.assert_close(out.top_token_probs[1, 0, 0], probs.max(), atol=1e-6, rtol=0)
    with pytest.raises(TypeError, match="list of questions"):
        cm.generate("one string", max_new_tokens=2)


def test_extract_answer():
    assert extract_answer("The answer is: 42", "The answer is:") == "42"
    assert extract_answer("blah 3 then 7", "The answer is:") == "7"
    assert extract_answer("The answer is: -1,250.5 x", "The answer is:") == "-1250.5"
    assert extract_answer("nothing", "The answer is:") == ""


def test_bad_problems(cm):
    with pytest.raises(ValueError, match="has no 'cot'"):
        cm.make_batch([dict(question="q", answer="1")])
    with pytest.raises(ValueError, match="max_length"):
        make_batch(cm.tokenizer, CODIConfig(cm.base_name, max_length=8), PROBLEMS)
    with pytest.raises(ValueError, match="nothing follows"):
        cm.make_batch([dict(question="q", cot="<<1+1=2>>", answer=" ")])


def test_other_base_config_is_refused():
    cfg = make_model("tiny-gpt2").config
    with pytest.raises(ValueError, match="another base model"):
        codi.CODIModel.from_config(CODIConfig(**dict(cfg.to_dict(), base_model="tiny-llama")))


def test_eos_separators_layout():
    """Official `--remove_eos False`: eos after the prompt and the CoT, and an eos right after <eot>."""
    cm = make_model("tiny-llama", eos_separators=True)
    eos = cm.tokenizer.eos_token_id
    b = cm.make_batch(PROBLEMS[:1])
    assert b.prompt_ids[0, -1] == eos and b.response_ids[0, 0] == eos
    n = int(b.teacher_mask[0].sum())
    m = int(b.response_mask[0].sum())
    assert b.teacher_ids[0, n - m] == eos  # the cot's eos is the same token as the student's eos after <eot>
    out = cm.generate(["Mia has 7 coins."], max_new_tokens=3)
    assert out.run.n_forced == 1 and out.run.response_ids[0, 0] == eos
