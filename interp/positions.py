"""Position labels: which cell of which forward call each named position is. All position bookkeeping lives here;
the label grammar itself (parse a label, its kind and index) is the leaf `poslabels`.

Plain models: `tok_0 .. tok_{n-1}` (index into each sample's real, unpadded tokens) plus the per-sample aliases
`last` and `prompt[-k]` (`prompt[-1]` == `last`). Samples of different lengths share the union of labels; a
`valid[sample, position]` mask marks the cells a sample really has.

    >>> from interp.positions import plain_labels, plain_plan
    >>> plain_labels("all", lengths=[3, 5])
    ['tok_0', 'tok_1', 'tok_2', 'tok_3', 'tok_4']
    >>> plan = plain_plan(["tok_0", "last"], lengths=[3, 5], seq_len=5, padding_side="left")
    >>> plan.col.tolist(), plan.valid.tolist()
    ([[2, 4], [0, 4]], [[True, True], [True, True]])

CODI runs (labels `q_i`, `bot`, `latent_j`, `eot`, `resp_j`, alias `q[-k]`) produce one residual tensor per forward
call of the latent loop. A `Plan` therefore names, per label, the forward call that holds it (`call`) and, per
sample, the column inside that call (`col`). The CODI branch of `interp.cache` builds its Plan from the loop's
`Segment` list with a function next to `plain_plan` here. Turning a Plan into tensor indices is written once,
`gather_indices` (per forward call: which labels it holds, at which column per sample), and `Plan.gather` picks
those cells out of per-call residuals; the CODI cache and the intervention engine both read cells through it.

    >>> import torch
    >>> from interp.positions import Plan
    >>> plan = Plan(["a", "b", "c"], call=[0, 1, 0], col=torch.tensor([[2, 0, 1]]), valid=torch.ones(1, 3, dtype=bool))
    >>> calls = [torch.arange(4.0).reshape(1, 4, 1), 10 + torch.arange(2.0).reshape(1, 2, 1)]   # [batch, seq, d]
    >>> plan.gather(calls)[0, :, 0].tolist()          # a: call 0 col 2, b: call 1 col 0, c: call 0 col 1
    [2.0, 10.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

import poslabels

__all__ = ["Plan", "CallCells", "gather_indices", "plain_labels", "plain_plan", "resolve_alias", "check_plain_labels",
           "shorten", "codi_labels", "codi_plan"]

PLAIN_FORMS = "'all', 'tok_<i>' (i >= 0), 'last', 'prompt[-<k>]' (k >= 1), or an int i meaning 'tok_<i>'"


@dataclass
class Plan:
    """Where each requested label lives in one batch: `labels[p]` is column `col[b, p]` of forward call
    `call[p]` for sample `b`; `valid[b, p]` is False where sample `b` has no such position.

    >>> plan = Plan(["q_0", "latent_0"], call=[0, 1], col=torch.tensor([[4, 0], [3, 0]]),
    ...             valid=torch.tensor([[True, True], [False, True]]))
    >>> plan.take(["latent_0"]).call, plan.tile(2).col.shape
    ([1], torch.Size([4, 2]))
    """

    labels: list[str]
    call: list[int]
    col: Int[Tensor, "batch pos"]
    valid: Bool[Tensor, "batch pos"]

    def gather(self, per_call: Sequence[Tensor] | Mapping[int, Tensor], first_call: int = 0,
               out: Tensor | None = None) -> Float[Tensor, "batch pos d"]:
        """The Plan's cells out of one layer's residuals, one tensor `[batch, seq, d]` per forward call:
        `out[b, p] = per_call[call[p] - first_call][b, col[b, p]]`, zeros where `valid[b, p]` is False.

        `first_call`: the call index of `per_call[0]` (a recording that began after the first call). `out=`: write
        into this `[batch, pos, d]` tensor (e.g. a view of a `[batch, layer, pos, d]` buffer) instead of a new one.

        >>> plan = plain_plan(["tok_0", "last"], lengths=[2, 3], seq_len=3, padding_side="left")
        >>> h = torch.arange(6.0).reshape(2, 3, 1)            # [batch, seq, d]: sample 0 has a pad at column 0
        >>> plan.gather([h])[..., 0].tolist()
        [[1.0, 2.0], [3.0, 5.0]]
        """
        calls = per_call if isinstance(per_call, Mapping) else dict(enumerate(per_call))
        first = calls[next(iter(calls))]
        device = first.device
        if out is None:
            out = first.new_zeros((len(self.col), len(self.labels), first.shape[-1]))
        rows = torch.arange(len(self.col), device=device)[:, None]
        for cells in gather_indices(self, device):
            out[:, cells.pos] = calls[cells.call - first_call][rows, cells.col]
        invalid = ~self.valid.to(device)
        if bool(invalid.any()):
            out.masked_fill_(invalid[..., None], 0)
        return out

    def take(self, labels: Sequence[str]) -> Plan:
        """The Plan of a subset of its labels, in the order given.

        >>> plain_plan(["tok_0", "last"], lengths=[2], seq_len=2, padding_side="left").take(["last"]).col.tolist()
        [[1]]
        """
        idx = [self.labels.index(label) for label in labels]
        return Plan(list(labels), [self.call[i] for i in idx], self.col[:, idx], self.valid[:, idx])

    def tile(self, k: int) -> Plan:
        """The Plan of a batch repeated `k` times along the batch (rows `g * batch + b`), as a replicated run has.

        >>> plain_plan(["last"], lengths=[1, 2], seq_len=2, padding_side="left").tile(2).col.tolist()
        [[1], [1], [1], [1]]
        """
        return Plan(list(self.labels), list(self.call), self.col.repeat(k, 1), self.valid.repeat(k, 1))


@dataclass(frozen=True)
class CallCells:
    """The cells of a Plan that one forward call holds: plan positions `pos` at column `col[b, i]` of sample b.

    >>> plan = Plan(["a", "b", "c"], call=[0, 1, 0], col=torch.tensor([[2, 0, 1]]), valid=torch.ones(1, 3, dtype=bool))
    >>> first = gather_indices(plan)[0]          # the cells of forward call 0
    >>> first.call, first.pos.tolist(), first.col.tolist()
    (0, [0, 2], [[2, 1]])
    """

    call: int
    pos: Int[Tensor, " n"]
    col: Int[Tensor, "batch n"]


def gather_indices(plan: Plan, device: torch.device | str | None = None) -> list[CallCells]:
    """The one place a Plan becomes tensor indices: per forward call it reads (in call order), which of its
    positions that call holds and their column per sample, on `device`.

    >>> plan = Plan(["a", "b", "c"], call=[0, 1, 0], col=torch.tensor([[2, 0, 1]]), valid=torch.ones(1, 3, dtype=bool))
    >>> [(c.call, c.pos.tolist(), c.col.tolist()) for c in gather_indices(plan)]
    [(0, [0, 2], [[2, 1]]), (1, [1], [[0]])]
    """
    calls = torch.tensor(plan.call, dtype=torch.long)
    out = []
    for c in sorted(set(plan.call)):
        pos = torch.nonzero(calls == c).flatten()
        out.append(CallCells(int(c), pos.to(device), plan.col[:, pos].to(device)))
    return out


def _as_label(p: str | int) -> str:
    if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
        if p < 0:
            raise ValueError(f"position {p} is negative; use 'last' or 'prompt[-{-p}]' for counting from the end.")
        return f"tok_{int(p)}"
    if not isinstance(p, str):
        raise TypeError(f"position {p!r} must be a label string or an int; valid forms: {PLAIN_FORMS}.")
    return p


def check_plain_labels(positions: Sequence[str | int]) -> list[str]:
    """Normalise and validate requested plain-model labels (raises on an unknown label, before any work).

    >>> check_plain_labels([0, "last", "prompt[-2]"])
    ['tok_0', 'last', 'prompt[-2]']
    >>> check_plain_labels(["latent_0"])
    Traceback (most recent call last):
    ...
    ValueError: unknown position label 'latent_0'. Valid forms: 'all', 'tok_<i>' (i >= 0), 'last', ...
    """
    out = []
    for p in positions:
        label = _as_label(p)
        lab = poslabels.parse(label)
        if not (lab.kind == "last" or (lab.kind == "token" and (not lab.relative or lab.index <= -1))):
            raise ValueError(f"unknown position label {label!r}. Valid forms: {PLAIN_FORMS}.")
        out.append(label)
    if len(set(out)) != len(out):
        raise ValueError(f"position labels repeat in {out}; list each position once.")
    return out


def plain_labels(positions: str | Sequence[str | int], lengths: Sequence[int]) -> list[str]:
    """The label list a plain-model cache stores: `'all'` -> `tok_0..tok_{max(lengths)-1}`; else the labels given.

    >>> plain_labels(["last", 0], lengths=[4])
    ['last', 'tok_0']
    """
    if isinstance(positions, str) and positions == "all":
        return [f"tok_{i}" for i in range(max(lengths))]
    if isinstance(positions, (str, int)):
        positions = [positions]
    return check_plain_labels(list(positions))


def _real_index(label: str, length: int) -> int:
    """Index into a sample's real tokens (may be out of range: caller checks)."""
    lab = poslabels.parse(label)
    if lab.kind == "last":
        return length - 1
    return length + lab.index if lab.relative else lab.index


def plain_plan(labels: Sequence[str], lengths: Sequence[int], seq_len: int, padding_side: str) -> Plan:
    """The Plan of one padded batch (one forward call) of a plain model.

    `lengths[b]` = real tokens of sample b, `seq_len` = padded length, `padding_side` = 'left' | 'right'.

    >>> plan = plain_plan(["tok_0", "tok_2", "last"], lengths=[2, 4], seq_len=4, padding_side="left")
    >>> plan.col.tolist(), plan.valid.tolist()           # sample 0 has no tok_2: column 0, invalid
    ([[2, 0, 3], [0, 2, 3]], [[True, False, True], [True, True, True]])
    """
    n_real = torch.as_tensor(list(lengths), dtype=torch.long)
    real = torch.tensor([[_real_index(label, int(n)) for label in labels] for n in lengths], dtype=torch.long)
    real = real.reshape(len(lengths), len(labels))
    valid = (real >= 0) & (real < n_real[:, None])
    offset = (seq_len - n_real)[:, None] if padding_side == "left" else torch.zeros_like(n_real)[:, None]
    col = torch.where(valid, real + offset, torch.zeros_like(real))
    return Plan(labels=list(labels), call=[0] * len(labels), col=col, valid=valid)


def resolve_alias(label: str, stored: Sequence[str],
                  valid: Bool[np.ndarray, "sample pos"],
                  ) -> tuple[Int[np.ndarray, " sample"], Bool[np.ndarray, " sample"]]:
    """Per-sample column of `label` in a stored cache: the label itself, or an alias resolved from the stored
    `tok_*` / `q_*` cells and the valid mask (`last`, `prompt[-k]` on `tok_*`; `q[-k]` on `q_*`).

    Returns (column per sample, found per sample).

    >>> valid = np.array([[True, True, False], [True, True, True]])       # sample 0 has 2 tokens, sample 1 has 3
    >>> cols, found = resolve_alias("last", ["tok_0", "tok_1", "tok_2"], valid)
    >>> cols.tolist(), found.tolist()
    ([1, 2], [True, True])
    >>> resolve_alias("prompt[-3]", ["tok_0", "tok_1", "tok_2"], valid)[1].tolist()
    [False, True]
    """
    stored = list(stored)
    n = valid.shape[0]
    if label in stored:
        j = stored.index(label)
        return np.full(n, j), valid[:, j].copy()
    lab = poslabels.parse(label)
    if lab.kind == "last" or (lab.kind == "token" and lab.relative):
        kind, prefix, k = "token", "tok_", 1 if lab.kind == "last" else -lab.index
    elif lab.kind == "question" and lab.relative:
        kind, prefix, k = "question", "q_", -lab.index
    else:
        raise ValueError(f"unknown position label {label!r}: this cache holds {shorten(stored)}.")
    parsed = [poslabels.parse(s) for s in stored]
    cols = np.array([i for i, s in enumerate(parsed) if s.kind == kind and not s.relative])
    if len(cols) == 0 or k < 1:
        raise ValueError(f"cannot resolve {label!r}: this cache holds no '{prefix}<i>' positions "
                         f"({shorten(stored)}). Cache with positions='all' (or include {label!r}) to select it.")
    index = sorted(parsed[c].index for c in cols)
    cols = cols[np.argsort([parsed[c].index for c in cols])]
    if index != list(range(len(index))):
        raise ValueError(f"cannot resolve {label!r}: the cache holds only some '{prefix}<i>' positions, so the "
                         f"per-sample last one is unknown. Cache with positions='all' or include {label!r}.")
    count = valid[:, cols].sum(axis=1)  # real tokens per sample among the stored ones (contiguous from 0)
    idx = count - k
    found = idx >= 0
    return np.where(found, cols[np.clip(idx, 0, len(cols) - 1)], 0), found


def shorten(labels: Sequence[str]) -> str:
    """A label list for an error message: all of it up to 8 labels, else the first 4, "..." and the last 3.

    >>> shorten([f"tok_{i}" for i in range(20)])
    'tok_0, tok_1, tok_2, tok_3, ..., tok_17, tok_18, tok_19'
    """
    labels = list(labels)
    return ", ".join(labels) if len(labels) <= 8 else ", ".join(labels[:4] + ["..."] + labels[-3:])


# ---------------------------------------------------------------------------------------------------- CODI runs
CODI_FORMS = (
    "'all', 'q_<i>', 'q[-<k>]', 'bot', 'latent_<j>', 'eot', 'resp_<j>' (lists of these), or the kinds "
    "'question', 'latents', 'response'"
)


def codi_labels(positions: str | Sequence[str], n_q: int, num_latents: int, n_resp: int) -> list[str]:
    """Label list of a CODI cache. `n_q`: most question tokens of any sample; `n_resp`: most response positions.

    >>> codi_labels("all", n_q=2, num_latents=2, n_resp=1)
    ['q_0', 'q_1', 'bot', 'latent_0', 'latent_1', 'eot', 'resp_0']
    >>> codi_labels(["latent_7"], 2, 6, 1)
    Traceback (most recent call last):
    ValueError: position 'latent_7' does not exist for this model: it has 6 latents (latent_0..latent_5). ...
    """
    kinds = {
        "question": [f"q_{i}" for i in range(n_q)],
        "latents": [f"latent_{j}" for j in range(num_latents)],
        "response": [f"resp_{j}" for j in range(n_resp)],
    }
    if isinstance(positions, str) and positions == "all":
        return kinds["question"] + ["bot"] + kinds["latents"] + ["eot"] + kinds["response"]
    if isinstance(positions, str):
        positions = [positions]
    out: list[str] = []
    for p in positions:
        if not isinstance(p, str):
            raise TypeError(f"position {p!r}: CODI caches take label strings; valid forms: {CODI_FORMS}.")
        if p in kinds:
            out += kinds[p]
            continue
        lab = poslabels.parse(p)
        m_q, m_b = lab.kind == "question" and not lab.relative, lab.kind == "question" and lab.relative
        m_l, m_r = lab.kind == "latent", lab.kind == "response"
        if m_l and lab.index >= num_latents:
            raise ValueError(
                f"position {p!r} does not exist for this model: it has {num_latents} latents "
                f"(latent_0..latent_{num_latents - 1}). Use one of those, or 'latents' for all."
            )
        if m_q and lab.index >= n_q:
            raise ValueError(
                f"position {p!r} does not exist: the longest question has {n_q} tokens (q_0..q_{n_q - 1})."
                f" Use q[-k] to count from the end of each question."
            )
        if m_r and lab.index >= n_resp:
            raise ValueError(
                f"position {p!r} does not exist: this run has at most {n_resp} response positions"
                + (f" (resp_0..resp_{n_resp - 1})." if n_resp else ".")
                + " Pass longer responses= or generate=True with a larger max_new_tokens."
            )
        if m_b and -lab.index < 1:
            raise ValueError(f"position {p!r}: q[-k] needs k >= 1 (q[-1] is the last question token).")
        if not (m_q or m_l or m_r or m_b or lab.kind in ("bot", "eot")):
            hint = (
                " Plain-model labels (tok_*, last) do not apply to CODI runs."
                if p.startswith(("tok_", "last", "prompt"))
                else ""
            )
            raise ValueError(f"unknown position label {p!r} for a CODI run.{hint} Valid forms: {CODI_FORMS}.")
        out.append(p)
    if len(set(out)) != len(out):
        raise ValueError(f"position labels repeat in {out}; list each position once.")
    return out


def codi_plan(run, labels: Sequence[str]) -> Plan:
    """Where each label lives in one latent-loop run: forward call and per-sample column (from `run.segments`).

    The prompt call is left-padded and ends with <bot>: sample b's question token i sits at column
    `width - 1 - n_b + i` where n_b = its real prompt tokens. Response token j is valid where `run.response_mask`
    is 1 and a forward call fed it (the last generated token is never fed).

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> run = cm.run(["1 + 2 = ?", "Sam has 7 coins."], ["3", "7"])
    >>> plan = codi_plan(run, ["q[-1]", "bot", "latent_0", "latent_1", "eot", "resp_0"])
    >>> plan.call                          # prompt call 0, one call per thought, then <eot> + response
    [0, 0, 1, 2, 3, 3]
    >>> plan.col[0].tolist()               # left-padded prompt of 12 columns ends with <bot>
    [10, 11, 0, 0, 0, 1]
    """
    segs = run.segments
    prompt = next(s for s in segs if s.kind == "prompt")
    width = prompt.length
    n_q = prompt.attention_mask.long().sum(-1).cpu() - 1  # real question tokens (without <bot>)
    batch = n_q.shape[0]
    latents = {s.index: s for s in segs if s.kind == "latent"}
    eot = next((s for s in segs if s.kind == "eot"), None)
    resp = [s for s in segs if s.kind == "response"]
    rmask = run.response_mask.bool().cpu()
    calls = []
    cols, valid = torch.zeros(batch, len(labels), dtype=torch.long), torch.zeros(batch, len(labels), dtype=torch.bool)
    for p, label in enumerate(labels):
        call, col, ok = 0, torch.zeros(batch, dtype=torch.long), torch.zeros(batch, dtype=torch.bool)
        lab = poslabels.parse(label)
        if lab.kind in ("question", "bot"):
            call = prompt.call
            if lab.kind == "bot":
                col, ok = torch.full((batch,), width - 1), torch.ones(batch, dtype=torch.bool)
            elif not lab.relative:
                i = lab.index
                col, ok = width - 1 - n_q + i, i < n_q
            else:
                k = -lab.index
                col, ok = torch.full((batch,), width - 1 - k), k <= n_q
        elif lab.kind == "latent":
            seg = latents.get(lab.index)
            if seg is not None:
                call, col, ok = seg.call, torch.full((batch,), seg.offset), torch.ones(batch, dtype=torch.bool)
        elif lab.kind == "eot":
            if eot is not None:
                call, col, ok = eot.call, torch.full((batch,), eot.offset), torch.ones(batch, dtype=torch.bool)
        elif lab.kind == "response":
            j = lab.index
            seg = next((s for s in resp if s.index <= j < s.index + s.length), None)
            if seg is not None and j < rmask.shape[1]:
                call, col = seg.call, torch.full((batch,), seg.offset + j - seg.index)
                ok = rmask[:, j] & seg.attention_mask[:, j - seg.index].bool().cpu()
        else:
            raise ValueError(f"unknown CODI position label {label!r}; valid forms: {CODI_FORMS}.")
        calls.append(int(call))
        cols[:, p] = torch.where(ok, col, torch.zeros_like(col))
        valid[:, p] = ok
    return Plan(labels=list(labels), call=calls, col=cols, valid=valid)
