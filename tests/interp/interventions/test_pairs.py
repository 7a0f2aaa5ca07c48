"""Changed-number counterfactual pairs (interp/interventions/pairs.py)."""

from __future__ import annotations

import pytest

from codi import data
from interp.interventions.pairs import changed_number_pairs, replay


def test_changed_number_pairs():
    assert replay("<<7+5=12>> <<12*3=36>>", 8) == ("<<8+5=13>> <<13*3=39>>", [13, 39])
    assert replay("<<9/3=3>>", 10) is None and replay("<<4-3=1>>", 2) is None
    probs = data.arithmetic(30, steps=(2, 3), seed=0)
    clean, corrupt = changed_number_pairs(probs, seed=0)
    assert len(clean) == len(corrupt) >= 25
    for a, b in zip(clean, corrupt):
        assert a.answer != b.answer and b.values[-1] == int(b.answer)
        wa, wb = a.question.split(), b.question.split()
        assert len(wa) == len(wb) and sum(x != y for x, y in zip(wa, wb)) == 1


@pytest.mark.slow
def test_changed_number_pairs_keep_token_count_smollm2():
    """With a real tokenizer (smollm2-135m) every pair has the same prompt length: labels align."""
    from interp.models import load_model

    tok = load_model("smollm2-135m").tokenizer
    clean, corrupt = changed_number_pairs(data.arithmetic(40, steps=3, seed=2), tok, seed=0)
    assert len(clean) >= 30
    for a, b in zip(clean, corrupt):
        assert len(tok(a.question)["input_ids"]) == len(tok(b.question)["input_ids"]) and a.answer != b.answer
