"""basemodels.tokenizer: the offline byte-level BPE of the tiny test models: same vocabulary on every build, any
text round trips, and the tiny models load it from their folders."""

from __future__ import annotations

from basemodels.registry import load_model
from basemodels.tokenizer import EOS, VOCAB_SIZE, build_tiny_tokenizer


def test_the_vocabulary_is_the_same_on_every_build_and_any_text_round_trips():
    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab() and len(a) == VOCAB_SIZE
    for text in ("Tom has 3 bags of 4 apples. The answer is: 8", "naïve café ☕ 東京\n\ttabs", ""):
        ids = a(text).input_ids
        assert a.decode(ids) == text
    assert a.eos_token == a.pad_token == a.bos_token == EOS and a.convert_tokens_to_ids(EOS) == 0
    assert len(a("The capital of France is Paris").input_ids) < len("The capital of France is Paris") // 2


def test_the_tiny_models_load_this_tokenizer():
    ref = build_tiny_tokenizer()
    for name in ("tiny-gpt2", "tiny-llama"):
        tok = load_model(name, device="cpu").tokenizer
        assert tok.get_vocab() == ref.get_vocab()
        text = "Mia has 7 coins. She loses 4."
        assert tok(text).input_ids == ref(text).input_ids
