"""codi.runner: what CODIModel and MergedCODI share: generation, latents and their top tokens."""

from __future__ import annotations

import pytest
import torch
from codi_fixtures import make_model

from codi.batch import prompt_token_ids


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


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


def test_prompts_are_the_template_ids_left_padded(cm):
    questions = ["Tom has 3 apples.", "Mia has 7 coins. She loses 4."]
    ids, mask = cm.tokenize_prompts(questions)
    for i, q in enumerate(questions):
        want = prompt_token_ids(cm.tokenizer, cm.config, q)
        assert ids[i][mask[i].bool()].tolist() == want
        assert mask[i, -len(want):].all() and not mask[i, :-len(want)].any()


def test_responses_are_the_lead_then_the_text():
    cm = make_model("tiny-llama", eos_separators=True)
    eos = cm.tokenizer.eos_token_id
    ids, mask = cm.tokenize_responses(["7", "12 apples"], 2)
    for i, text in enumerate(["7", "12 apples"]):
        assert ids[i][mask[i].bool()].tolist() == [eos] + cm.tokenizer(text, add_special_tokens=False).input_ids
    lead, lead_mask = cm.tokenize_responses(None, 3)
    assert lead.tolist() == [[eos]] * 3 and lead_mask.tolist() == [[1]] * 3
    assert make_model("tiny-gpt2").tokenize_responses(None, 2) == (None, None)  # no separators: nothing to force
    with pytest.raises(ValueError, match="1 responses for 2 questions"):
        cm.tokenize_responses(["7"], 2)


def test_zero_thoughts_answer_right_after_bot_and_eot(cm):
    out = cm.generate(["Tom has 3 apples."], max_new_tokens=2, num_latents=0, return_latents=True)
    assert out.latents.shape == (1, 0, cm.d_model)
    assert [s.kind for s in out.run.segments][:2] == ["prompt", "eot"]
    assert out.run.segments[1].call == 1
