"""Position labels as figures need them: which kind a label is, run order, and groups of consecutive kinds.

The label grammar is `poslabels` (CODI runs: `q_i`, `q[-k]`, `bot`, `latent_j`, `eot`,
`resp_j`; plain models: `tok_i`, `prompt[-k]`, `last`); viz reads them to order columns and draw separators.

    >>> from viz.position_kinds import parse_position, run_order
    >>> parse_position("latent_3")
    ('latent', 3)
    >>> run_order(["resp_0", "latent_1", "bot", "q[-1]", "latent_0", "eot"])
    ['q[-1]', 'bot', 'latent_0', 'latent_1', 'eot', 'resp_0']
"""

from __future__ import annotations

import poslabels
from poslabels import KINDS, run_order  # noqa: F401 (re-exported: viz.run_order)

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


def parse_position(label: str) -> tuple[str, int]:
    """(kind, index) of a position label (`poslabels.parse`); kind is one of KINDS. Relative aliases keep their
    negative index.

    >>> parse_position("q[-2]"), parse_position("bot"), parse_position("resp_4")
    (('question', -2), ('bot', 0), ('response', 4))
    """
    lab = poslabels.parse(label)
    return lab.kind, lab.index


def position_kind(label: str) -> str:
    """The kind of a position label: question, bot, latent, eot, response, token, last or other.

    >>> [position_kind(p) for p in ("q_3", "q[-1]", "bot", "latent_0", "eot", "resp_2", "tok_5", "last", "mean")]
    ['question', 'question', 'bot', 'latent', 'eot', 'response', 'token', 'last', 'other']
    """
    return poslabels.kind(label)


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
