"""codi.organisms.vocab: one token per word, in the order given, saved and reloaded as a normal HF tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from codi.organisms.tasks import pointer_chase
from codi.organisms.vocab import SPECIALS, STRUCTURE, word_tokenizer


def test_one_id_per_word_in_order_and_a_round_trip_through_a_folder(tmp_path):
    words = pointer_chase(3).words
    tok = word_tokenizer(words)
    order = SPECIALS + STRUCTURE + words
    assert tok.convert_ids_to_tokens(list(range(len(order)))) == order and len(tok) == len(order)
    text = "3>7 7>3 | 3 <bot> 7 <eot> = 7"
    ids = tok(text)["input_ids"]
    assert ids == [order.index(w) for w in text.split()] and tok.decode(ids) == text
    assert tok("3 99")["input_ids"] == [order.index("3"), order.index("<unk>")]
    assert (tok.pad_token, tok.eos_token, tok.unk_token) == ("<pad>", "<eos>", "<unk>")
    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back(text)["input_ids"] == ids and back.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("bad", ["", "two words"])
def test_words_with_whitespace_or_empty_are_refused(bad):
    with pytest.raises(ValueError, match="no whitespace"):
        word_tokenizer(["1", bad])
