"""codi.loop: batch invariance (padding / batch composition), cached loop == one uncached pass, hooks see calls."""

from __future__ import annotations

import pytest
import torch
from codi_fixtures import QUESTIONS, make_model

import interp
from codi.loop import latent_loop, position_ids

TOL = 1e-5  # float32, CPU


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


def test_position_ids_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids(mask, 5).tolist() == [[1, 1, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert position_ids(mask, 1).tolist() == [[2], [4]]


@torch.no_grad()
def test_batch_invariance_teacher_forced(cm):
    """The middle question alone and inside a batch (one longer, one shorter question) gives the same numbers."""
    resp = ["The answer is: 10", "The answer is: 7", "The answer is: 16"]
    alone = cm.run(QUESTIONS[1:2], responses=resp[1:2], keep_hidden_states=True)
    batch = cm.run(QUESTIONS, responses=resp, keep_hidden_states=True)
    assert batch.segments[0].attention_mask[1].min() == 0  # row 1 really is left-padded in the batch
    torch.testing.assert_close(batch.latents[1:2], alone.latents, atol=TOL, rtol=0)
    torch.testing.assert_close(batch.latent_inputs[1:2], alone.latent_inputs, atol=TOL, rtol=0)
    m = alone.response_ids.shape[1]
    torch.testing.assert_close(batch.logits[1:2, :m], alone.logits, atol=TOL, rtol=0)
    for call_b, call_a in zip(batch.hidden_states[1:], alone.hidden_states[1:]):  # latent + eot calls, every layer
        for hb, ha in zip(call_b, call_a):
            torch.testing.assert_close(hb[1:2, : ha.shape[1]], ha, atol=TOL, rtol=0)


@torch.no_grad()
def test_batch_invariance_generation(cm):
    alone = [cm.generate([q], max_new_tokens=6, return_latents=True) for q in QUESTIONS]
    batch = cm.generate(QUESTIONS, max_new_tokens=6, return_latents=True)
    for i, a in enumerate(alone):
        n = a.run.response_ids.shape[1]
        assert batch.run.response_ids[i, :n].tolist() == a.run.response_ids[0].tolist()
        assert batch.texts[i] == a.texts[0]
        torch.testing.assert_close(batch.latents[i:i + 1], a.latents, atol=TOL, rtol=0)


@torch.no_grad()
def test_cached_loop_equals_one_uncached_pass(cm):
    """Re-running the whole sequence (prompt, <bot>, fed-back thoughts, <eot>, response) in ONE call without a KV
    cache reproduces every hidden state of the cached loop: masks, position ids and cache are right."""
    run = cm.run(QUESTIONS[:2], responses=["The answer is: 10", "The answer is: 7"], keep_hidden_states=True)
    ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
    emb = cm.model.get_input_embeddings()
    b = ids.shape[0]
    x = torch.cat([emb(ids), cm.bot_embeds.expand(b, 1, -1), run.latent_inputs, cm.eot_embeds.expand(b, 1, -1),
                   emb(run.response_ids)], dim=1)
    full_mask = run.attention_mask
    assert full_mask.shape[1] == x.shape[1]
    out = cm.model(inputs_embeds=x, attention_mask=full_mask, position_ids=position_ids(full_mask, x.shape[1]),
                   output_hidden_states=True)
    cached = [torch.cat(layer, dim=1) for layer in zip(*run.hidden_states)]
    for layer, (whole, parts) in enumerate(zip(out.hidden_states, cached)):
        real = full_mask.bool()
        torch.testing.assert_close(parts[real], whole[real], atol=1e-5, rtol=0, msg=f"layer {layer}")
    p = ids.shape[1] + 1
    # latent j is the last-layer hidden state of the position before its input
    torch.testing.assert_close(run.latents, out.hidden_states[-1][:, p - 1: p - 1 + cm.config.num_latents],
                               atol=1e-5, rtol=0)


@torch.no_grad()
def test_hooks_see_every_call(cm):
    """interp.hooks on the HF model record every forward call of the loop, with the segment lengths."""
    with interp.hooks.record_residuals(cm.model, "all") as rec:
        run = cm.run(QUESTIONS[:2], max_new_tokens=4, keep_hidden_states=True)
    assert rec.n_calls == run.n_calls
    lengths = {}
    for s in run.segments:
        lengths[s.call] = max(lengths.get(s.call, 0), s.offset + s.length)
    assert [r.shape[1] for r in rec.residuals[1]] == [lengths[c] for c in range(run.n_calls)]
    # hooks see what HF returns in hidden_states (layers 0..n_layers-1; the last HF one is after the final norm)
    for layer in range(cm.n_layers):
        for call in range(run.n_calls):
            torch.testing.assert_close(rec.residuals[layer][call], run.hidden_states[call][layer], atol=0, rtol=0)


@torch.no_grad()
def test_segments_and_call_order(cm):
    run = cm.run(QUESTIONS[:2], responses=["The answer is: 1", "7"])
    k = cm.config.num_latents
    kinds = [(s.kind, s.index, s.call, s.offset) for s in run.segments]
    assert kinds == ([("prompt", 0, 0, 0)] + [("latent", j, j + 1, 0) for j in range(k)]
                     + [("eot", 0, k + 1, 0), ("response", 0, k + 1, 1)])
    assert run.segments[-1].length == run.response_ids.shape[1]
    assert run.response_mask[1].tolist()[-1] == 0  # the shorter response is right-padded
    gen = cm.run(QUESTIONS[:1], max_new_tokens=3)
    assert [s.kind for s in gen.segments][-3:] == ["eot", "response", "response"]
    assert gen.response_ids.shape == (1, 3) and gen.logits.shape[:2] == (1, 3)


@torch.no_grad()
def test_latent_input_fn(cm):
    base = cm.run(QUESTIONS[:1], max_new_tokens=2)
    same = cm.run(QUESTIONS[:1], max_new_tokens=2, latent_input_fn=lambda j, e: e)
    torch.testing.assert_close(same.latents, base.latents, atol=0, rtol=0)
    zeroed = cm.run(QUESTIONS[:1], max_new_tokens=2, latent_input_fn=lambda j, e: e * 0 if j == 0 else e)
    assert torch.equal(zeroed.latent_inputs[:, 0], torch.zeros_like(zeroed.latent_inputs[:, 0]))
    torch.testing.assert_close(zeroed.latents[:, 0], base.latents[:, 0], atol=0, rtol=0)  # before the edit
    assert not torch.allclose(zeroed.latents[:, 1], base.latents[:, 1])  # after it
    with pytest.raises(ValueError, match="latent_input_fn returned shape"):
        cm.run(QUESTIONS[:1], latent_input_fn=lambda j, e: e[:, :3])


def test_right_padded_prompt_is_refused():
    cm = make_model("tiny-llama")
    ids = torch.tensor([[5, 6, 0]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        latent_loop(cm.model, ids, torch.tensor([[1, 1, 0]]), prj=cm.prj, num_latents=1, eot_embeds=cm.eot_embeds)


def _clocked_run(cm, ids, mask, r_ids, r_mask, layer, **kw):
    """A run under an edit hook and a recorder at `layer` that both number calls by the loop's own clock."""
    seen = []
    clock = interp.hooks.CallClock()

    def edit(h, call):
        seen.append(call)
        return h

    with interp.hooks.edit_residual(cm.model, layer, edit, clock=clock), \
            interp.hooks.record_residuals(cm.model, [layer], clock=clock) as rec:
        run = cm.run_ids(ids, mask, r_ids, r_mask, on_call=clock, **kw)
    return run, rec, seen


@torch.no_grad()
def test_prompt_reuse_equals_the_full_run_exactly(cm):
    """Handing the prompt call's state back (KV cache + last hidden) skips that call and changes nothing: the same
    segments and call numbers, the same thoughts, logits and generated tokens, bit for bit; hooks numbering calls
    by the loop's clock see the same call numbers (1, 2, ...; call 0 is the skipped prompt call) and record the
    same residuals in every call that ran."""
    ids, mask = cm.tokenize_prompts(QUESTIONS)
    r_ids, r_mask = cm.tokenize_responses(["The answer is: 10", "7", "The answer is: 16"], 3)
    full, rec_f, seen_f = _clocked_run(cm, ids, mask, r_ids, r_mask, 1, keep_prompt_state=True)
    state = full.prompt_state
    assert state.cache.get_seq_length() == state.mask.shape[1] == ids.shape[1] + 1  # + <bot>
    reuse, rec_r, seen_r = _clocked_run(cm, ids, mask, r_ids, r_mask, 1, prompt_state=state.rows(torch.arange(3)))
    k = cm.config.num_latents
    assert seen_f == list(range(k + 2)) and seen_r == list(range(1, k + 2)) and rec_r.calls == seen_r
    assert [(s.kind, s.index, s.call, s.offset, s.length) for s in reuse.segments] == \
        [(s.kind, s.index, s.call, s.offset, s.length) for s in full.segments]
    for name in ("latents", "latent_inputs", "logits", "response_ids", "response_mask", "attention_mask"):
        assert torch.equal(getattr(reuse, name), getattr(full, name)), name
    for call in seen_r:
        assert torch.equal(rec_r.at(1, call), rec_f.at(1, call)), call
    # generation after the reused prompt: the same tokens
    gen_f = cm.run_ids(ids, mask, max_new_tokens=4, keep_prompt_state=True)
    gen_r = cm.run_ids(ids, mask, max_new_tokens=4, prompt_state=gen_f.prompt_state.rows(torch.arange(3)))
    assert torch.equal(gen_r.response_ids, gen_f.response_ids) and torch.equal(gen_r.logits, gen_f.logits)


@torch.no_grad()
def test_prompt_state_tiled_to_replicas(cm):
    """rows(index) serves a replicated batch (the interventions' case): replica r equals the single run, up to
    float32 rounding of the larger matmuls."""
    ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
    full = cm.run_ids(ids, mask, max_new_tokens=3, keep_prompt_state=True)
    rows = torch.arange(2).repeat(3)
    tiled = cm.run_ids(ids[rows], mask[rows], max_new_tokens=3, prompt_state=full.prompt_state.rows(rows))
    assert torch.equal(tiled.response_ids, full.response_ids.repeat(3, 1))
    torch.testing.assert_close(tiled.latents, full.latents.repeat(3, 1, 1), atol=TOL, rtol=0)


def test_a_prompt_state_fits_only_its_prompts_and_one_run(cm):
    with torch.no_grad():
        ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
        state = cm.run_ids(ids, mask, keep_prompt_state=True).prompt_state
        once = state.rows(torch.arange(2))
        cm.run_ids(ids, mask, prompt_state=once)
        with pytest.raises(ValueError, match="already used by a run"):
            cm.run_ids(ids, mask, prompt_state=once)
        other, other_mask = cm.tokenize_prompts(QUESTIONS[1:])
        with pytest.raises(ValueError, match="made from other prompts"):
            cm.run_ids(other, other_mask, prompt_state=state.rows(torch.arange(2)))
        with pytest.raises(ValueError, match="keep_hidden_states=True needs the hidden states of the calls"):
            cm.run_ids(ids, mask, prompt_state=state.rows(torch.arange(2)), keep_hidden_states=True)
    # made with gradients on (the model's parameters require grad): the kept state is detached and reusable
    run = cm.run_ids(ids, mask, keep_prompt_state=True)
    assert not run.prompt_state.last_hidden.requires_grad
    with torch.no_grad():
        again = cm.run_ids(ids, mask, prompt_state=run.prompt_state.rows(torch.arange(2)))
    torch.testing.assert_close(again.latents, run.latents.detach(), atol=0, rtol=0)


def test_a_run_made_with_gradients_detached(cm):
    """LatentRun.detached(): the same values with no graph behind any tensor (thoughts, logits, hidden states,
    last hidden, every key and value of the final cache), and a resume from it equals a resume from a run made
    without gradients."""
    ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
    r_ids, r_mask = cm.tokenize_responses(["7", "The answer is: 16"], 2)
    run = cm.run_ids(ids, mask, r_ids, r_mask, keep_prompt_state=True, keep_hidden_states=True)
    assert run.latents.requires_grad and run.cache.layers[0].keys.requires_grad  # the parameters require grad
    d = run.detached()
    tensors = [d.latents, d.latent_inputs, d.logits, d.last_hidden, *[x for h in d.hidden_states for x in h]]
    tensors += [t for layer in d.cache.layers for t in (layer.keys, layer.values)]
    assert not any(t.requires_grad for t in tensors)
    for name in ("latents", "latent_inputs", "logits", "last_hidden"):
        assert torch.equal(getattr(d, name), getattr(run, name).detach()), name
    assert run.latents.requires_grad  # the run itself is left as it was
    with torch.no_grad():
        plain = cm.run_ids(ids, mask, r_ids, r_mask, keep_prompt_state=True)
        a = cm.run_ids(ids, mask, r_ids, r_mask, prompt_state=d.state_at(2).rows(torch.arange(2)))
        b = cm.run_ids(ids, mask, r_ids, r_mask, prompt_state=plain.state_at(2).rows(torch.arange(2)))
    assert torch.equal(a.logits, b.logits)
