"""A small byte-level BPE tokenizer built offline, for the random-init test models.

    >>> tok = build_tiny_tokenizer()
    >>> tok.decode(tok("3 + 4 = 7").input_ids)
    '3 + 4 = 7'

It is trained deterministically on a fixed corpus of arithmetic word problems and plain English, so every machine
builds the same vocabulary; any text encodes (bytes are the base alphabet).
"""

from __future__ import annotations

VOCAB_SIZE = 512
EOS = "<|endoftext|>"

_WORDS = (
    "the a an of to and in is was for on that with as by at from it he she they we you his her their has have had "
    "how many much more less left total each every bags apples books coins eggs pens boxes cards days hours "
    "question answer true false honest lie lying deceptive assistant user system capital country city element "
    "symbol number larger smaller than what which who gives buys sells eats loses finds gets makes shares "
    "Tom Mia Sam Ana Leo Zoe France Paris Japan Tokyo Italy Rome Spain Madrid Germany Berlin Egypt Cairo "
    "hydrogen helium carbon oxygen gold iron silver copper neon sodium calcium zinc "
    "The capital of France is Paris . Q: A: The answer is"
)


def _corpus() -> list[str]:
    lines = [_WORDS]
    for a in range(0, 40):
        for b in range(1, 13, 3):
            lines.append(f"Tom has {a} bags of {b} apples. He eats {b}. How many are left? <<{a}*{b}={a * b}>> "
                         f"<<{a * b}-{b}={a * b - b}>> The answer is: {a * b - b}")
    return lines


def build_tiny_tokenizer(vocab_size: int = VOCAB_SIZE):
    """Train the byte-level BPE and wrap it as a `PreTrainedTokenizerFast` with eos = pad = `<|endoftext|>`.

    >>> len(build_tiny_tokenizer()) <= 512
    True
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                                   unk_token=EOS, clean_up_tokenization_spaces=False)
