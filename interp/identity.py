"""Per-run identity check: which (layer, position) cells cannot tell the labels apart because they are identical.

The seed study's probes scored exactly 50% everywhere because the honest and the deceptive sample of each question
were the same input up to the probed positions. This check finds that before anyone fits a probe: for every group
(e.g. a question id) holding samples with different labels, it compares each sample against the group's first
sample of another label, cell by cell, and counts the groups where the activations are identical.

    >>> import numpy as np
    >>> from interp.identity import identity_check
    >>> acts = np.zeros((4, 2, 3, 8), np.float32); acts[1, :, 2] = 1; acts[3, :, 2] = 1   # only position 2 differs
    >>> rep = identity_check(acts, labels=[0, 1, 0, 1], groups=["a", "a", "b", "b"],
    ...                      positions=["q_0", "bot", "resp_0"], layers=[0, 1])
    >>> rep.blind_positions
    ['q_0', 'bot']
    >>> print(rep)                       # the text `cache.summary()` shows
    identity check: 2 groups with different labels; 4 of 6 (layer, position) cells hold identical activations
    across labels in every group.
    WARNING: IDENTICAL ACTIVATIONS ACROSS LABELS at 2 of 3 positions (q_0, bot): ...

"Identical" means max |a - b| <= rtol * max(1, max |a|) over the d_model vector (rtol = 1e-4 by default: batches
with different padding may change the last bits; label-driven differences are orders of magnitude larger).
A position that is identical at every layer in every group is reported as unable to depend on the label, with a
warning (`IdentityWarning`) when the run is cached.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Bool, Float, Int

__all__ = [
    "IdentityReport",
    "IdentityWarning",
    "identity_check",
    "check_cache",
    "summary_text",
    "warn_if_blind",
]


class IdentityWarning(UserWarning):
    """Positions whose activations are identical across labels within groups: probes there must score chance.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("q_0 is blind", IdentityWarning)
    >>> caught[0].category.__name__, issubclass(IdentityWarning, UserWarning)
    ('IdentityWarning', True)
    """


@dataclass
class IdentityReport:
    """Result of `identity_check`.

    `compared[p]`: groups compared at position p (both samples valid there);
    `identical[l, p]`: of those, how many hold identical activations across labels at layer l.

    >>> rep = IdentityReport(layers=[0, 1], positions=["q_0", "resp_0"], n_groups=2, compared=np.array([2, 2]),
    ...                      identical=np.array([[2, 0], [2, 1]]))
    >>> rep.blind_positions, rep.n_blind_cells, rep.n_cells
    (['q_0'], 2, 4)
    >>> rep.to_dict()["identical"]
    [[2, 0], [2, 1]]
    """

    layers: list[int]
    positions: list[str]
    n_groups: int  # groups that hold at least two different labels
    compared: Int[np.ndarray, " pos"]
    identical: Int[np.ndarray, "layer pos"]
    rtol: float = 1e-4
    notes: list[str] = field(default_factory=list)

    @property
    def blind_cells(self) -> Bool[np.ndarray, "layer pos"]:
        """Cells identical across labels in every compared group."""
        return (self.identical == self.compared[None, :]) & (self.compared[None, :] > 0)

    @property
    def n_blind_cells(self) -> int:
        return int(self.blind_cells.sum())

    @property
    def blind_positions(self) -> list[str]:
        """Positions identical across labels at every layer in every compared group: they cannot depend on it."""
        cols = self.blind_cells.all(axis=0) if self.layers else np.zeros(len(self.positions), bool)
        return [p for p, b in zip(self.positions, cols) if b]

    @property
    def n_cells(self) -> int:
        return int((self.compared > 0).sum()) * len(self.layers)

    def warning_text(self) -> str | None:
        """The loud warning, or None when no position is blind."""
        blind = self.blind_positions
        if not blind:
            return None
        compared = sorted({int(self.compared[self.positions.index(p)]) for p in blind})
        return (
            f"IDENTICAL ACTIVATIONS ACROSS LABELS at {len(blind)} of {len(self.positions)} positions "
            f"({compress(blind)}): in every group ({'/'.join(map(str, compared))} groups compared) the samples with "
            f"different labels hold the same activations at every layer there, so these positions cannot depend on "
            f"the label and any probe on them must score chance (AUROC 0.5). The label-bearing text comes after "
            f"them. Put the label-bearing text (e.g. the instruction) before the positions you probe, e.g. "
            f"probes.tasks.load('deception-arith', placement='before'), or probe later positions."
        )

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        if self.n_groups == 0:
            return [
                "identity check: no group holds two different labels, so nothing was compared"
                + (f" ({'; '.join(self.notes)})" if self.notes else "")
                + "."
            ]
        out = [
            f"identity check: {self.n_groups} groups with different labels; {self.n_blind_cells} of "
            f"{self.n_cells} (layer, position) cells hold identical activations across labels in every group."
        ]
        warn = self.warning_text()
        if warn:
            out.append("WARNING: " + warn)
        partly = [
            (p, int(self.identical[:, j].max()), int(self.compared[j]))
            for j, p in enumerate(self.positions)
            if p not in self.blind_positions and self.identical[:, j].max() > 0
        ]
        if partly:
            out.append(
                "partly identical (position: max groups identical / compared): "
                + ", ".join(f"{p}: {a}/{b}" for p, a, b in partly[:12])
                + (" ..." if len(partly) > 12 else "")
            )
        out += self.notes
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        return dict(
            layers=self.layers,
            positions=self.positions,
            n_groups=self.n_groups,
            compared=self.compared.tolist(),
            identical=self.identical.tolist(),
            rtol=self.rtol,
            blind_positions=self.blind_positions,
            n_blind_cells=self.n_blind_cells,
            notes=self.notes,
        )


def compress(labels: Sequence[str]) -> str:
    """`['q_0', 'q_1', 'q_2', 'bot']` -> `'q_0..q_2, bot'` (runs of consecutive indices of one prefix).

    >>> compress(["q_0", "q_1", "q_2", "bot", "latent_0", "latent_2"])
    'q_0..q_2, bot, latent_0, latent_2'
    """
    out, run = [], []

    def flush():
        if run:
            out.append(run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}")
            run.clear()

    def split(s):
        head, _, tail = s.rpartition("_")
        return (head, int(tail)) if tail.isdigit() else (s, None)

    for s in labels:
        if run:
            (h0, i0), (h1, i1) = split(run[-1]), split(s)
            if not (i0 is not None and h0 == h1 and i1 == i0 + 1):
                flush()
        run.append(s)
    flush()
    return ", ".join(out)


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """[..., d] pairs -> [...] bool: max |a-b| <= rtol * max(1, max |a|)."""
    diff = np.abs(a - b).max(axis=-1)
    scale = np.maximum(1.0, np.abs(a).max(axis=-1))
    return diff <= rtol * scale


def identity_check(
    acts: Float[np.ndarray, "sample layer pos d"],
    labels: Sequence[Any],
    groups: Sequence[Any],
    positions: Sequence[str],
    layers: Sequence[int],
    valid: Bool[np.ndarray, "sample pos"] | None = None,
    rtol: float = 1e-4,
) -> IdentityReport:
    """Count, per (layer, position), the groups whose differently-labelled samples hold identical activations.

    `acts` may be a memory map: it is read one group at a time.

    >>> acts = np.zeros((2, 1, 2, 4), np.float32); acts[1, 0, 1] = 0.5       # only position 1 differs
    >>> rep = identity_check(acts, labels=[0, 1], groups=["g", "g"], positions=["bot", "resp_0"], layers=[3])
    >>> rep.compared.tolist(), rep.identical.tolist(), rep.blind_positions
    ([1, 1], [[1, 0]], ['bot'])
    """
    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    n, n_pos = acts.shape[0], len(positions)
    if len(labels) != n or len(groups) != n:
        raise ValueError(f"identity_check: {n} samples but {len(labels)} labels and {len(groups)} groups.")
    valid = np.ones((n, n_pos), bool) if valid is None else np.asarray(valid, bool)
    compared = np.zeros(n_pos, np.int64)
    identical = np.zeros((len(layers), n_pos), np.int64)
    n_groups = 0
    order: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        if g is None or (isinstance(g, float) and np.isnan(g)):
            continue
        order.setdefault(g, []).append(i)
    for idx in order.values():
        lab = [labels[i] for i in idx]
        if len({str(x) for x in lab}) < 2:
            continue
        n_groups += 1
        ref = idx[0]
        others = [i for i in idx if str(labels[i]) != str(labels[ref])]
        a = np.asarray(acts[ref], dtype=np.float32)  # [layer, pos, d]
        both = valid[ref][None, :] & valid[others]  # [other, pos]
        usable = both.all(axis=0)
        same = np.ones((len(layers), n_pos), bool)
        for o in others:
            same &= _same(a, np.asarray(acts[o], dtype=np.float32), rtol)
        compared += usable
        identical += same & usable[None, :]
    notes = []
    if labels.size and all(x is None for x in labels):
        notes.append("samples carry no labels")
    if groups.size and all(g is None for g in groups):
        notes.append("samples carry no groups (give each a 'group', e.g. the question id)")
    return IdentityReport(
        layers=list(layers),
        positions=list(positions),
        n_groups=n_groups,
        compared=compared,
        identical=identical,
        rtol=rtol,
        notes=notes,
    )


def check_cache(cache, rtol: float = 1e-4) -> IdentityReport:
    """Run `identity_check` on an ActivationCache (uses `.array()`, `.valid`, `.samples`, `.layers`, `.positions`).

    >>> import interp
    >>> prompts = [dict(text="Q: 2+3?\\nA: 5", label=0, group="q0"), dict(text="Q: 2+3?\\nA: 7", label=1, group="q0")]
    >>> c = interp.cache(interp.load_model("tiny-gpt2"), prompts, progress=False)
    >>> check_cache(c).blind_positions                   # the two prompts differ only in their last token
    ['tok_0', 'tok_1', 'tok_2', 'tok_3', 'tok_4', 'tok_5', 'tok_6', 'tok_7', 'tok_8']
    """
    samples = cache.samples
    n = len(samples)
    labels = list(samples["label"]) if "label" in samples else [None] * n
    groups = list(samples["group"]) if "group" in samples else [None] * n
    return identity_check(
        cache.array(), labels, groups, cache.positions, cache.layers, valid=cache.valid, rtol=rtol
    )


def summary_text(cache) -> str:
    """The identity part of `cache.summary()`.

    >>> import interp
    >>> prompts = [dict(text="Q: 2+3?\\nA: 5", label=0, group="q0"), dict(text="Q: 2+3?\\nA: 7", label=1, group="q0")]
    >>> print(summary_text(interp.cache(interp.load_model("tiny-gpt2"), prompts, progress=False)))
    identity check: 1 groups with different labels; 27 of 30 (layer, position) cells hold identical activations
    across labels in every group.
    WARNING: IDENTICAL ACTIVATIONS ACROSS LABELS at 9 of 10 positions (tok_0..tok_8): ...
    """
    return str(check_cache(cache))


def warn_if_blind(report: IdentityReport, stacklevel: int = 3) -> None:
    """Emit an `IdentityWarning` when some positions cannot depend on the label.

    >>> import warnings
    >>> acts = np.zeros((2, 1, 1, 4), np.float32)                              # identical: blind everywhere
    >>> rep = identity_check(acts, labels=[0, 1], groups=["g", "g"], positions=["bot"], layers=[0])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_blind(rep)
    >>> [w.category.__name__ for w in caught]
    ['IdentityWarning']
    """
    text = report.warning_text()
    if text:
        warnings.warn(text, IdentityWarning, stacklevel=stacklevel)
