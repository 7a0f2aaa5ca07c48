"""Word-level tokenizers for the organisms' tasks, saved as normal Hugging Face tokenizer folders.

One token per word (whitespace split): every node name, edge (`3>7`), value and operation of a task is one token,
plus the structural words `|`, `=`, `<bot>`, `<eot>` and the specials `<pad>`, `<eos>`, `<unk>`.

    >>> from codi.organisms.tasks import pointer_chase
    >>> tok = word_tokenizer(pointer_chase(3).words)
    >>> ids = tok("3>7 7>3 | 3 = 7")["input_ids"]
    >>> tok.decode(ids), len(tok)
    ('3>7 7>3 | 3 = 7', 151)
"""

from __future__ import annotations

__all__ = ["word_tokenizer", "SPECIALS", "STRUCTURE"]

SPECIALS = ["<pad>", "<eos>", "<unk>"]
STRUCTURE = ["|", "=", "<bot>", "<eot>"]


def word_tokenizer(words: list[str]):
    """A `PreTrainedTokenizerFast` over SPECIALS + STRUCTURE + `words` (pad=<pad>, eos=<eos>, unk=<unk>).

    >>> tok = word_tokenizer(["1", "2", "1>2"])
    >>> tok("1>2 | 1 = 2 9")["input_ids"], tok.convert_ids_to_tokens([0, 1, 2]), len(tok)
    ([9, 3, 7, 4, 8, 2], ['<pad>', '<eos>', '<unk>'], 10)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for w in SPECIALS + STRUCTURE + list(words):
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"word {w!r}: vocabulary words must be non-empty and contain no whitespace.")
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   clean_up_tokenization_spaces=False)
