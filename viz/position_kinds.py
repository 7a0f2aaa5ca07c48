"""Position labels as figures need them: which kind a label is, run order, and groups of consecutive kinds.

The labels themselves are defined in interp/positions.py (CODI runs: `q_i`, `q[-k]`, `bot`, `latent_j`, `eot`,
`resp_j`; plain models: `tok_i`, `prompt[-k]`, `last`). viz reads them to order columns and draw separators.

    >>> from viz.position_kinds import parse_position, run_order
    >>> parse_position("latent_3")
    ('latent', 3)
    >>> run_order(["resp_0", "latent_1", "bot", "q[-1]", "latent_0", "eot"])
    ['q[-1]', 'bot', 'latent_0', 'latent_1', 'eot', 'resp_0']
"""

from __future__ import annotations

import re

# Kinds in the order the model sees them.
KINDS = ("question", "bot", "latent", "eot", "response", "token", "last", "other")
KIND_TITLES = {
    "question": "question",
    "bot": "bot",
    "latent": "latents",
    "eot": "eot",
    "response": "response",
    "token": "tokens",
    "last": "last",
    "other": "other",
}

_PATTERNS = [
    (re.compile(r"^q_(\d+)$"), "question", 1),
    (re.compile(r"^q\[(-\d+)\]$"), "question", 1),
    (re.compile(r"^latent_(\d+)$"), "latent", 1),
    (re.compile(r"^resp_(\d+)$"), "response", 1),
    (re.compile(r"^tok_(\d+)$"), "token", 1),
    (re.compile(r"^prompt\[(-\d+)\]$"), "token", 1),
]


def parse_position(label: str) -> tuple[str, int]:
    """(kind, index) of a position label; kind is one of KINDS. Relative aliases keep their negative index.

    >>> parse_position("q[-2]"), parse_position("bot"), parse_position("resp_4")
    (('question', -2), ('bot', 0), ('response', 4))
    """
    label = str(label)
    if label in ("bot", "eot", "last"):
        return label, 0
    for pattern, kind, group in _PATTERNS:
        m = pattern.match(label)
        if m:
            return kind, int(m.group(group))
    return "other", 0


def position_kind(label: str) -> str:
    """The kind of a position label: question, bot, latent, eot, response, token, last or other."""
    return parse_position(label)[0]


def _sort_key(item: tuple[int, str]) -> tuple[int, int, int, int]:
    original, label = item
    kind, index = parse_position(label)
    relative = 1 if index < 0 else 0  # absolute indices (q_3) before aliases counted from the end (q[-1])
    return KINDS.index(kind), relative, index if kind != "other" else original, original


def run_order(labels: list[str]) -> list[str]:
    """Labels in run order: question, bot, latents, eot, response (plain models: tok_*, prompt[-k], last).

    Unknown labels go last, in the order given. The sort is stable, so duplicates keep their order.
    """
    return [label for _, label in sorted(enumerate(labels), key=_sort_key)]


def kind_groups(labels: list[str]) -> list[tuple[str, int, int]]:
    """Runs of consecutive labels of the same kind: [(kind, first_index, last_index_inclusive), ...].

    >>> kind_groups(["q_0", "q_1", "bot", "latent_0"])
    [('question', 0, 1), ('bot', 2, 2), ('latent', 3, 3)]
    """
    groups: list[tuple[str, int, int]] = []
    for i, label in enumerate(labels):
        kind = position_kind(label)
        if groups and groups[-1][0] == kind:
            groups[-1] = (kind, groups[-1][1], i)
        else:
            groups.append((kind, i, i))
    return groups
