"""interp.interventions.batch: problems read from every prompt form, tokenised exactly as codi.batch does, and answer
scores equal to a recomputation from the run's logits, row by row. Named test_interventions_batch.py, not
test_batch.py: codi/batch.py has a module of the same name, and pytest imports test files by basename."""

from __future__ import annotations

import math

import pytest
import torch
from interventions_fixtures import PROBS, qa

import interp
from codi import data
from codi.batch import answer_response, prompt_token_ids
from interp.interventions.batch import check_codi, prepare, score
from interp.interventions.batch import qa as read_qa


def test_qa_reads_dicts_problems_and_strings_with_answers():
    probs = data.arithmetic(3, steps=2, seed=0)
    assert read_qa(probs, None) == ([p.question for p in probs], [p.answer for p in probs])
    assert read_qa([{"text": "1 + 1 = ?", "answer": 2}], None) == (["1 + 1 = ?"], ["2"])
    assert read_qa(PROBS, None) == qa(PROBS)
    assert read_qa(["a?", "b?"], [1, "2"]) == (["a?", "b?"], ["1", "2"])
    with pytest.raises(ValueError, match=r"prompts \[0\] have no answer: pass answers="):
        read_qa(["a?"], None)
    with pytest.raises(ValueError, match="2 answers for 1 prompts"):
        read_qa(["a?"], ["1", "2"])
    with pytest.raises(ValueError, match="prompt 0 .* has no question"):
        read_qa([{"answer": "1"}], None)


def test_prepare_tokenises_prompts_answers_and_foils_as_codi_batch_does(llama):
    qs, ans = qa(PROBS)
    foils = ["8", "7", "30"]  # the second foil is the answer itself: no position where they differ
    b = prepare(llama, qs, ans, foils=foils)
    tok, cfg = llama.tokenizer, llama.config
    width = b.prompt_ids.shape[1]
    for i, q in enumerate(qs):
        want = prompt_token_ids(tok, cfg, q)
        assert b.prompt_mask[i].tolist() == [0] * (width - len(want)) + [1] * len(want)  # left-padded
        assert b.prompt_ids[i, width - len(want):].tolist() == want
        ids, start, end = answer_response(tok, cfg, ans[i])
        assert b.resp_ids[i, : len(ids)].tolist() == ids and int(b.resp_mask[i].sum()) == len(ids)  # right-padded
        assert (int(b.ans_start[i]), int(b.ans_end[i])) == (start, end)
        other = answer_response(tok, cfg, foils[i])[0]
        diff = next((k for k, (x, y) in enumerate(zip(ids, other)) if x != y), None)
        assert bool(b.foil_valid[i]) == (diff is not None)
        if diff is not None:
            assert (int(b.foil_pos[i]), int(b.foil_tok[i])) == (diff, other[diff])
    assert b.foil_valid.tolist() == [True, False, True]
    ids, mask, r_ids, r_mask = b.tiled(2)
    assert torch.equal(ids, torch.cat([b.prompt_ids, b.prompt_ids])) and torch.equal(r_mask[3:], b.resp_mask)
    with pytest.raises(ValueError, match="2 foils for 3 answers"):
        prepare(llama, qs, ans, foils=foils[:2])


def test_scores_equal_a_row_by_row_recomputation_from_the_logits(llama):
    qs, ans = qa(PROBS)
    b = prepare(llama, qs, ans, foils=["8", "7", "30"])
    with torch.no_grad():
        run = llama.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask)
        s = score(llama, run, b, repeats=1)
        twice = score(llama, llama.run_ids(*b.tiled(2)), b, repeats=2)
    logits = run.logits[..., : llama.vocab_size].double()
    for i in range(len(b)):
        n = int(b.resp_mask[i].sum())
        ids = b.resp_ids[i, :n].tolist()
        lp = torch.log_softmax(logits[i], -1)
        greedy = logits[i, :n].argmax(-1).tolist()
        assert s["correct"][i].item() == float(greedy == ids)
        start, end = int(b.ans_start[i]), int(b.ans_end[i])
        assert math.isclose(s["answer_logp"][i].item(), sum(lp[k, ids[k]].item() for k in range(start, end)),
                            rel_tol=1e-5, abs_tol=1e-5)
        row = logits[i, start].clone()
        ref = row[ids[start]].item()
        row[ids[start]] = -math.inf
        assert math.isclose(s["margin"][i].item(), ref - row.max().item(), rel_tol=1e-5, abs_tol=1e-5)
        if b.foil_valid[i]:
            k, t = int(b.foil_pos[i]), int(b.foil_tok[i])
            want = (logits[i, k, ids[k]] - logits[i, k, t]).item()
            assert math.isclose(s["logit_diff"][i].item(), want, rel_tol=1e-5, abs_tol=1e-5)
        else:
            assert math.isnan(s["logit_diff"][i].item())
    for k, v in s.items():  # a replicated batch scores every replica as the batch itself
        torch.testing.assert_close(twice[k], torch.cat([v, v]), equal_nan=True, rtol=1e-5, atol=1e-5)


def test_only_codi_models_are_accepted():
    with pytest.raises(TypeError, match="Model is not a CODI model: .* Pass codi.CODIModel.from_pretrained"):
        check_codi(interp.load_model("tiny-llama"))
    with pytest.raises(TypeError, match="not a CODI model"):
        prepare(interp.load_model("tiny-llama"), ["1 + 1 = ?"], ["2"])
