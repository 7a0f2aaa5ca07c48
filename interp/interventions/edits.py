"""What an edit is, and which samples it writes: `Edit` (set or add a vector at one cell) and `edited` (the
samples each edit group changes, over which a study averages its cell).

A sample is left alone by an edit when the edit's label does not exist for it (e.g. `q_30` of a short question,
`Plan.valid`) or when the edit's own `valid` flags exclude it.

    >>> import codi, torch
    >>> from interp.interventions.batch import prepare
    >>> from interp.interventions.engine import baseline
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> base = baseline(cm, prepare(cm, ["1 + 1 = ?", "2 + 2 = ?"], ["2", "4"]))
    >>> Edit(1, "latent_0", valid=torch.tensor([False, True])).rows(base.plan, 2).tolist()
    [False, True]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from argcheck import BadArgument
from interp.positions import Plan

__all__ = ["INPUT", "Edit", "edited"]

INPUT = -1  # "layer" of the fed-back continuous thought (input level, before the model adds anything)


@dataclass
class Edit:
    """Set (`op="set"`) or add (`op="add"`) `value` at (`layer`, `label`) for every sample of a Batch.

    `value`: None (zeros, for set), a vector [d] (same for every sample) or per-sample rows [B, d]. Samples
    for which the label does not exist (e.g. q_30 of a short question), or that `valid` excludes, are left
    alone (`rows`).

    >>> import codi, torch
    >>> from interp.interventions.batch import prepare
    >>> from interp.interventions.engine import baseline, run_cells
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> b = prepare(cm, ["2 + 3 = ?"], ["5"]); base = baseline(cm, b)
    >>> zero = Edit(INPUT, "latent_0")                                 # zero the first fed-back thought
    >>> push = Edit(1, "latent_1", torch.ones(cm.d_model), op="add")   # add a vector to the residual at layer 1
    >>> s = run_cells(cm, b, [[zero], [push], [zero, push]], base.plan)
    >>> s["answer_logp"].shape                                         # [group, sample]
    torch.Size([3, 1])
    """

    layer: int
    label: str
    value: Tensor | None = None
    op: str = "set"
    valid: Bool[Tensor, " batch"] | None = None  # optional: only these samples

    def __post_init__(self) -> None:
        if self.op not in ("set", "add"):
            raise BadArgument("Edit.op", self.op, "must be 'set' or 'add'",
                              "pass op='set' (write the value) or op='add' (add it to the residual)")
        if self.value is not None and (not isinstance(self.value, Tensor) or self.value.dim() not in (1, 2)):
            raise BadArgument("Edit.value", self.value, "must be None (zeros), a vector [d_model] or rows "
                              "[batch, d_model]", "pass a torch tensor of one of those shapes",
                              shown=f"<{type(self.value).__name__} {tuple(getattr(self.value, 'shape', ()))}>")
        if self.valid is not None and (not isinstance(self.valid, Tensor) or self.valid.dim() != 1):
            raise BadArgument("Edit.valid", self.valid, "must be None or a bool tensor [batch]",
                              "pass one flag per sample", shown=f"<{type(self.valid).__name__}>")

    def rows(self, plan: Plan, nb: int) -> Bool[Tensor, " batch"]:
        """The samples this edit writes (on the CPU): its label exists for them and `valid` keeps them.

        >>> import codi
        >>> from interp.interventions.batch import prepare
        >>> from interp.interventions.engine import baseline
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> plan = baseline(cm, prepare(cm, ["1 + 1 = ?"], ["2"])).plan
        >>> Edit(1, "latent_1").rows(plan, 1).tolist()
        [True]
        """
        if self.label not in plan.labels:
            raise ValueError(f"edit at {self.label!r}: not among the planned positions {plan.labels[:8]}...")
        ok = plan.valid[:, plan.labels.index(self.label)].cpu()
        if self.valid is not None:
            if len(self.valid) != nb:
                raise BadArgument("Edit.valid", self.valid, f"must hold one flag per sample ({nb})",
                                  "pass a bool tensor [batch]", shown=f"<{len(self.valid)} flags>")
            ok = ok & self.valid.cpu().bool()
        return ok

    def values(self, nb: int, d: int, device: str | torch.device = "cpu") -> Float[Tensor, "batch d"]:
        """The value written for each of `nb` samples, [nb, d] on `device` (zeros for `value=None`).

        >>> Edit(0, "bot", torch.ones(3)).values(2, 3).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
        """
        if self.value is None:
            return torch.zeros(nb, d, device=device)
        want = (d,) if self.value.dim() == 1 else (nb, d)
        if tuple(self.value.shape) != want:
            raise BadArgument("Edit.value", self.value, f"must have shape {list(want)} here (d_model={d}, {nb} "
                              "samples)", "pass a vector of d_model entries, or one row per sample",
                              shown=f"<tensor {list(self.value.shape)}>")
        v = self.value.to(device)
        return v.expand(nb, d) if v.dim() == 1 else v


def edited(groups: Sequence[Sequence[Edit]], plan: Plan) -> Bool[Tensor, "group batch"]:
    """Which samples each edit group changes: those at least one of its edits writes (`Edit.rows`). A study
    averages a cell over these samples.

    >>> import codi, torch
    >>> from interp.interventions.batch import prepare
    >>> from interp.interventions.engine import baseline
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> base = baseline(cm, prepare(cm, ["1 + 1 = ?", "2 + 2 = ?"], ["2", "4"]))
    >>> edited([[Edit(1, "latent_0")], [Edit(1, "latent_0", valid=torch.tensor([False, True]))], []],
    ...        base.plan).tolist()
    [[True, True], [False, True], [False, False]]
    """
    nb = plan.valid.shape[0]
    out = torch.zeros(len(groups), nb, dtype=torch.bool)
    for g, group in enumerate(groups):
        for e in group:
            out[g] |= e.rows(plan, nb)
    return out
