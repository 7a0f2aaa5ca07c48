"""codi.loopstate: a run resumed before any latent step equals the full run bit for bit; states fit one run only."""

from __future__ import annotations

import pytest
import torch
from codi_fixtures import QUESTIONS, make_model
from transformers.cache_utils import DynamicSlidingWindowLayer

import interp
from codi.loopstate import PromptState, check_state, cut_state


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


def _clocked(cm, ids, mask, r_ids, r_mask, **kw):
    seen, clock = [], interp.hooks.CallClock()
    with interp.hooks.edit_residual(cm.model, 1, lambda h, call: (seen.append(call), h)[1], clock=clock), \
            interp.hooks.record_residuals(cm.model, [2], clock=clock) as rec:
        run = cm.run_ids(ids, mask, r_ids, r_mask, on_call=clock, **kw)
    return run, rec, seen


@torch.no_grad()
def test_resume_before_every_latent_step_equals_the_full_run_exactly(cm):
    """state_at(j) for j = 0..k: the resumed run runs calls j+1..k+1 only, and its segments, call numbers,
    thoughts, logits and every recorded residual equal the full run's, bit for bit (left-padded batch of 3)."""
    ids, mask = cm.tokenize_prompts(QUESTIONS)
    r_ids, r_mask = cm.tokenize_responses(["The answer is: 10", "7", "The answer is: 16"], 3)
    full, rec_f, seen_f = _clocked(cm, ids, mask, r_ids, r_mask, keep_prompt_state=True)
    k = cm.config.num_latents
    assert k >= 2 and seen_f == list(range(k + 2))
    for j in range(k + 1):
        state = full.state_at(j)
        assert state.step == j and state.cache.get_seq_length() == ids.shape[1] + 1 + j
        run, rec, seen = _clocked(cm, ids, mask, r_ids, r_mask, prompt_state=state.rows(torch.arange(3)))
        assert seen == list(range(j + 1, k + 2)), (j, seen)
        assert [(s.kind, s.index, s.call, s.offset, s.length) for s in run.segments] == \
            [(s.kind, s.index, s.call, s.offset, s.length) for s in full.segments]
        for a, b in zip(run.segments, full.segments):
            assert torch.equal(a.attention_mask, b.attention_mask), (j, a.kind, a.index)
        for name in ("latents", "latent_inputs", "logits", "response_ids", "attention_mask", "last_hidden"):
            assert torch.equal(getattr(run, name), getattr(full, name)), (j, name)
        for call in seen:
            assert torch.equal(rec.at(2, call), rec_f.at(2, call)), (j, call)


@torch.no_grad()
def test_a_resumed_thought_can_still_be_edited(cm):
    """latent_input_fn sees only the steps the resumed run runs, and an edit there matches the same edit in a
    full run exactly."""
    ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
    full = cm.run_ids(ids, mask, keep_prompt_state=True, max_new_tokens=2)
    k = cm.config.num_latents
    seen = []

    def zero_last(j, t):
        seen.append(j)
        return t * 0 if j == k - 1 else t

    edited_full = cm.run_ids(ids, mask, max_new_tokens=2, latent_input_fn=zero_last)
    seen.clear()
    edited = cm.run_ids(ids, mask, max_new_tokens=2, latent_input_fn=zero_last,
                        prompt_state=full.state_at(k - 1).rows(torch.arange(2)))
    assert seen == [k - 1]
    assert torch.equal(edited.logits, edited_full.logits) and torch.equal(edited.response_ids, edited_full.response_ids)
    assert not torch.equal(edited.latent_inputs[:, -1], full.latent_inputs[:, -1])


def test_states_fit_one_run_of_their_prompts(cm):
    with torch.no_grad():
        ids, mask = cm.tokenize_prompts(QUESTIONS[:2])
        full = cm.run_ids(ids, mask, keep_prompt_state=True)
        k = cm.config.num_latents
        with pytest.raises(ValueError, match="a state exists before latent steps 0..3"):
            full.state_at(k + 1)
        with pytest.raises(ValueError, match="keep_prompt_state=True"):
            cm.run_ids(ids, mask).state_at(1)
        once = full.state_at(2).rows(torch.arange(2))
        cm.run_ids(ids, mask, prompt_state=once)
        with pytest.raises(ValueError, match="already used by a run"):
            cm.run_ids(ids, mask, prompt_state=once)
        with pytest.raises(ValueError, match="has only num_latents=1 steps"):
            cm.run_ids(ids, mask, prompt_state=full.state_at(2).rows(torch.arange(2)), num_latents=1)
        other, other_mask = cm.tokenize_prompts(QUESTIONS[1:])
        with pytest.raises(ValueError, match="made from other prompts"):
            cm.run_ids(other, other_mask, prompt_state=full.state_at(1).rows(torch.arange(2)))
    # made with gradients on: the cut state is detached
    assert not cm.run_ids(ids, mask, keep_prompt_state=True).state_at(2).latents.requires_grad


def test_a_sliding_window_cache_is_not_cut():
    """Sliding-window layers keep only the last window, so no later state can be cut from them: None."""
    layer = DynamicSlidingWindowLayer(sliding_window=4)
    layer.update(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))
    cache = type("Cache", (), {"layers": [layer]})()
    z = torch.zeros(1, 1, 2)
    assert cut_state(torch.zeros(1, 1), cache, torch.ones(1, 3), z, z, z[:, 0], 2, 1) is None


def test_check_state_names_what_does_not_fit():
    s = PromptState(torch.tensor([[5]]), torch.ones(1, 3, dtype=torch.long), None, torch.zeros(1, 4), step=2)
    with pytest.raises(ValueError, match="before latent step 2, but this run has only num_latents=1"):
        check_state(s, torch.tensor([[5]]), torch.ones(1, 1, dtype=torch.long), False, 1)
