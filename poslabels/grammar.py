"""The grammar of position labels: what a label means, its kind, its index and where it sits in a run.

CODI runs: `q_i` (question token i), `q[-k]` (k-th question token from the end), `bot`, `latent_j` (continuous
thought j), `eot`, `resp_j` (response token j). Plain models: `tok_i`, `prompt[-k]`, `last`. Any other string
parses as kind "other". Which labels exist for a given model and batch is decided elsewhere (`interp.positions`).

    >>> from poslabels.grammar import parse, kind
    >>> parse("latent_3")
    Label(text='latent_3', kind='latent', index=3, relative=False)
    >>> kind("prompt[-1]"), kind("last"), kind("tok_0"), kind("layer_9")
    ('token', 'last', 'token', 'other')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KINDS", "Label", "parse", "kind", "latent_index", "is_latent", "is_alias", "order_key", "run_order"]

# Kinds in the order the model sees them.
KINDS = ("question", "bot", "latent", "eot", "response", "token", "last", "other")

# (pattern, kind, counts from the end); the group is the index, negative for the `[-k]` forms
_PATTERNS = [
    (re.compile(r"^q_(\d+)$"), "question", False),
    (re.compile(r"^q\[(-\d+)\]$"), "question", True),
    (re.compile(r"^latent_(\d+)$"), "latent", False),
    (re.compile(r"^resp_(\d+)$"), "response", False),
    (re.compile(r"^tok_(\d+)$"), "token", False),
    (re.compile(r"^prompt\[(-\d+)\]$"), "token", True),
]


@dataclass(frozen=True)
class Label:
    """A parsed position label. `index`: i of `q_i`/`tok_i`, j of `latent_j`/`resp_j`, -k of `q[-k]` and
    `prompt[-k]`, 0 for `bot`, `eot`, `last` and other labels. `relative`: a `[-k]` form (counts from the end).

    >>> lab = parse("q[-1]")
    >>> lab.kind, lab.index, lab.relative
    ('question', -1, True)
    >>> Label("latent_2", "latent", 2) == parse("latent_2")
    True
    """

    text: str
    kind: str
    index: int = 0
    relative: bool = False


def parse(label: object) -> Label:
    """The Label of a position label (any object is read as `str(label)`).

    >>> parse("resp_4").index, parse("bot").kind, parse("prompt[-2]").relative
    (4, 'bot', True)
    """
    text = str(label)
    if text in ("bot", "eot", "last"):
        return Label(text, text)
    for pattern, kind_, relative in _PATTERNS:
        m = pattern.match(text)
        if m:
            return Label(text, kind_, int(m.group(1)), relative)
    return Label(text, "other")


def kind(label: object) -> str:
    """The kind of a label: question, bot, latent, eot, response, token, last or other.

    >>> kind("q_0"), kind("latent_2"), kind("resp_1")
    ('question', 'latent', 'response')
    """
    return parse(label).kind


def latent_index(label: object) -> int | None:
    """j of `latent_j`, None for every other label.

    >>> latent_index("latent_5"), latent_index("resp_5")
    (5, None)
    """
    lab = parse(label)
    return lab.index if lab.kind == "latent" else None


def is_latent(label: object) -> bool:
    """True for `latent_j` labels (the continuous thoughts).

    >>> is_latent("latent_0"), is_latent("latents")
    (True, False)
    """
    return parse(label).kind == "latent"


def is_alias(label: object) -> bool:
    """True for the per-sample aliases resolved against stored cells: `last`, `prompt[-k]`, `q[-k]`.

    >>> is_alias("last"), is_alias("q[-1]"), is_alias("q_1")
    (True, True, False)
    """
    lab = parse(label)
    return lab.kind == "last" or lab.relative


def order_key(label: object, original: int = 0) -> tuple[int, int, int, int]:
    """Sort key of run order: kind, absolute indices (`q_3`) before aliases from the end (`q[-1]`), index;
    other labels keep `original` (their place in the input).

    >>> sorted(["eot", "latent_1", "q_0"], key=order_key)
    ['q_0', 'latent_1', 'eot']
    """
    lab = parse(label)
    relative = 1 if lab.index < 0 else 0
    return KINDS.index(lab.kind), relative, lab.index if lab.kind != "other" else original, original


def run_order(labels: list) -> list:
    """Labels in run order: question, bot, latents, eot, response (plain models: tok_*, prompt[-k], last).

    Unknown labels go last, in the order given. The sort is stable, so duplicates keep their order.

    >>> run_order(["last", "tok_1", "prompt[-2]", "tok_0"])
    ['tok_0', 'tok_1', 'prompt[-2]', 'last']
    """
    return [label for _, label in sorted(enumerate(labels), key=lambda item: order_key(item[1], item[0]))]
