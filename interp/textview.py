"""What a text-only monitor sees at each cached position: the prompt tokens (and response tokens) up to there.

`probes.text_baseline(grid, texts)` fits a bag-of-words probe on exactly the tokens visible at each position; this
module produces those token lists from a cache and the model's tokenizer, with the same tokenization the cache used:

- plain caches (`tok_i`, `last`, `prompt[-k]`): the sample's tokens up to and including that position;
- CODI caches: `q_i` / `q[-k]` the prompt tokens up to that one; `bot`, `latent_j`, `eot` the whole prompt (the
  thoughts add no text); `resp_j` the prompt plus the response tokens 0..j (the input at `resp_j` is token j).

A cell the cache has no value for (`cache.valid` False) is None; any disagreement with `cache.valid` is an error
(it means the tokenization here is not the cache's).

    >>> import interp
    >>> from interp.textview import visible_tokens
    >>> m = interp.load_model("tiny-gpt2")
    >>> c = interp.cache(m, ["a b c", "hello"], layers=[1], positions=["tok_0", "last", "tok_4"], progress=False)
    >>> v = visible_tokens(c, m)
    >>> len(v), len(v[0]), v[0][0] == v[0][1][:1], v[1][2] is None
    (2, 3, True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

import argcheck
import poslabels

__all__ = ["visible_tokens"]

Tokens = list[str] | None


def _index(label: str, length: int) -> int:
    """Index of a plain-model position label into a sample's real tokens (may fall outside 0..length-1)."""
    lab = poslabels.parse(label)
    if lab.kind == "last":
        return length - 1
    return length + lab.index if lab.relative else lab.index


def _plain(cache, tokenizer) -> list[list[Tokens]]:
    out = []
    for text in cache.samples["text"].tolist():
        toks = tokenizer.convert_ids_to_tokens(tokenizer(str(text), add_special_tokens=True)["input_ids"])
        row: list[Tokens] = []
        for p in cache.positions:
            i = _index(p, len(toks))
            row.append(list(toks[:i + 1]) if 0 <= i < len(toks) else None)
        out.append(row)
    return out


def _codi(cache, cm) -> list[list[Tokens]]:
    from codi.batch import prompt_token_ids

    tok = cm.tokenizer
    extras = getattr(cache, "extras", None) or {}
    resp_ids, resp_mask = extras.get("response_ids"), extras.get("response_mask")
    out = []
    for i, text in enumerate(cache.samples["prompt_text"].tolist()):
        q = tok.convert_ids_to_tokens(prompt_token_ids(tok, cm.config, str(text)))
        resp: list[str] = []
        if resp_ids is not None:
            ids = [int(t) for t, k in zip(np.asarray(resp_ids[i]), np.asarray(resp_mask[i])) if k]
            resp = tok.convert_ids_to_tokens(ids)
        row: list[Tokens] = []
        for p in cache.positions:
            lab = poslabels.parse(p)
            if lab.kind == "question":
                j = len(q) + lab.index if lab.relative else lab.index
                row.append(list(q[:j + 1]) if 0 <= j < len(q) else None)
            elif lab.kind == "response":
                row.append(list(q) + list(resp[:lab.index + 1]) if lab.index < len(resp) else None)
            else:                                                  # bot, latent_j, eot: the whole prompt
                row.append(list(q))
        out.append(row)
    return out


def visible_tokens(cache, model: Any) -> list[list[Tokens]]:
    """Per sample, per cache position, the token strings visible there (None where the cache has no value).

    cache: an ActivationCache (plain or CODI; a CODI cache needs its extras for response positions, as
    `interp.cache(...)` and `interp.load_cache` of a CODI folder give). model: the model that made it (an
    `interp.Model`, a CODI model, or anything with `.tokenizer`; CODI caches also need `.config`).

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> cache = interp.cache(m, ["hi there", "a b c"], positions=["tok_0", "last"], progress=False)
    >>> texts = visible_tokens(cache, m)        # then probes.text_baseline(grid, texts) beside a probe sweep
    >>> [len(row) for row in texts], texts[1][0] == texts[1][1][:1]
    ([2, 2], True)
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise argcheck.BadArgument("model", type(model).__name__, "must carry the tokenizer the cache was made with "
                                   "(.tokenizer)", "pass the interp.Model or CODI model that made the cache")
    is_codi = bool((cache.meta or {}).get("codi"))
    if is_codi and not hasattr(model, "config"):
        raise argcheck.BadArgument("model", type(model).__name__, "must be the CODI model for a CODI cache (its "
                                   "prompt template decides the question tokens)", "pass the CODI model")
    if is_codi and any(poslabels.parse(p).kind == "response" for p in cache.positions) and \
            "response_ids" not in (getattr(cache, "extras", None) or {}):
        raise argcheck.BadArgument("cache", repr(cache), "has response positions but no response_ids extras",
                                   "open a CODI cache folder with interp.load_cache (it reads the extras)")
    rows = _codi(cache, model) if is_codi else _plain(cache, tokenizer)
    seen = np.array([[t is not None for t in row] for row in rows], bool).reshape(cache.valid.shape)
    bad = np.argwhere(seen != np.asarray(cache.valid, bool))
    if len(bad):
        i, j = (int(x) for x in bad[0])
        raise ValueError(f"sample {i}, position {cache.positions[j]!r}: the cache says the cell "
                         f"{'exists' if cache.valid[i, j] else 'does not exist'} but the tokenization here says "
                         f"otherwise ({len(bad)} cells disagree): pass the model (tokenizer, CODI config) that made "
                         f"the cache")
    return rows
