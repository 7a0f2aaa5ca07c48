"""Changed-number counterfactual pairs (interp/interventions/pairs.py)."""

from __future__ import annotations

import pytest

from codi import data
from codi.data import Problem
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



def test_a_chain_that_is_not_one_line_of_steps_gives_no_pair():
    """GSM8k-Aug chains may compute a side value from fresh numbers (3 pens at 4, 2 books at 6, then the total):
    replaying them from a new start as if each step used the previous result gave 5 pens -> 5*4=20, 20*6=120,
    120+12=132 (the true answer is 32), a wrong foil. Such problems are skipped; linear ones still pair, with the
    answer the new start really gives."""
    side = Problem("g1", "A shop sells 3 pens for 4 dollars each and 2 books for 6 dollars each. What is the "
                   "total?", "<<3*4=12>> <<2*6=12>> <<12+12=24>>", "24", [12, 12, 24], 3)
    line = Problem("g2", "Tom has 3 boxes of 4 eggs and buys 6 more eggs. How many eggs?", "<<3*4=12>> <<12+6=18>>",
                   "18", [12, 18], 2)
    assert replay(side.cot, 5) is None
    clean, corrupt = changed_number_pairs([side, line], seed=0)
    assert [p.id for p in clean] == ["g2"]
    x = int(corrupt[0].question.split()[2])
    assert corrupt[0].answer == str(x * 4 + 6) and corrupt[0].values == [x * 4, x * 4 + 6]


@pytest.mark.slow
def test_changed_number_pairs_keep_token_count_smollm2():
    """With a real tokenizer (smollm2-135m) every pair has the same prompt length: labels align."""
    from interp.models import load_model

    tok = load_model("smollm2-135m").tokenizer
    clean, corrupt = changed_number_pairs(data.arithmetic(40, steps=3, seed=2), tok, seed=0)
    assert len(clean) >= 30
    for a, b in zip(clean, corrupt):
        assert len(tok(a.question)["input_ids"]) == len(tok(b.question)["input_ids"]) and a.answer != b.answer
