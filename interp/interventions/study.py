"""The one skeleton that ablation, patching and steering share: a batch, its baseline, cells, edit groups, a grid.

Every cell study runs the same steps; only the edit groups and the metrics differ:

1. `CellStudy.open(model, kind, batch, layers, positions)`: the unedited baseline run (plan, scores, residuals
   of the layers that the edits need, the prompt call's state for reuse) and the cells, one per (layer,
   position), where layer -1 (`"input"`) is the fed-back thought and exists only at latent positions;
2. `study.run(groups, ...)`: one edit group per cell through the batched engine (`engine.run_cells`);
3. `study.per_cell(values, edited=s["edited"])`: {score: [cell, sample]} -> {score: [layer, position, sample]}
   (NaN where no cell, and where the cell does not exist for a sample: a cell's metrics and deltas average
   over the samples it edits, paired with their own baseline values);
4. `study.grid(metrics, scores, warnings, **config)`: the neutral `grids.ResultGrid` that `viz` draws.

    >>> import codi, numpy as np
    >>> from interp.interventions.batch import prepare
    >>> from interp.interventions.engine import Edit
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["2 + 3 = ?"], ["5"]), ["input", 1], "latents")
    >>> st.cells
    [(-1, 'latent_0'), (-1, 'latent_1'), (1, 'latent_0'), (1, 'latent_1')]
    >>> s = st.run([[Edit(layer, p)] for layer, p in st.cells], progress=False)
    >>> per = st.per_cell({"answer_logp": s["answer_logp"]})
    >>> g = st.grid({"answer_logp": nanmean(per["answer_logp"])}, per["answer_logp"])
    >>> g.layers, g.positions, g.config.kind
    ([-1, 1], ['latent_0', 'latent_1'], 'ablation')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Bool
from torch import Tensor
from tqdm.auto import tqdm

import poslabels
from grids import Finding, ResultGrid
from interp.interventions.batch import Batch, check_codi
from interp.interventions.engine import INPUT, Baseline, Edit, baseline, batch_labels, edited, run_cells, run_labels

__all__ = ["CellStudy", "parse_layers", "cells_of", "nanmean", "grid_config"]


def parse_layers(model, layers: Any) -> list[int]:
    """'all' -> [-1 (input), 0..n_layers]; 'input' -> -1; ints checked against the model.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> parse_layers(cm, "all"), parse_layers(cm, ["input", 2])
    ([-1, 0, 1, 2], [-1, 2])
    """
    n = model.n_layers
    if isinstance(layers, str) and layers == "all":
        return [INPUT] + list(range(n + 1))
    if isinstance(layers, (str, int)):
        layers = [layers]
    out = []
    for x in layers:
        x = INPUT if x in ("input", INPUT) else x
        if not isinstance(x, int) or not INPUT <= x <= n:
            raise ValueError(f"layer {x!r}: use 'input' (the fed-back thought) or an int 0..{n}.")
        out.append(x)
    return out


def cells_of(layers: list[int], labels: list[str]) -> list[tuple[int, str]]:
    """Cells in (layer, position) order, skipping 'input' at non-latent positions.

    >>> cells_of([-1, 0], ["bot", "latent_0"])
    [(-1, 'latent_0'), (0, 'bot'), (0, 'latent_0')]
    """
    cells = [(layer, p) for layer in layers for p in labels if layer != INPUT or poslabels.is_latent(p)]
    if not cells:
        raise ValueError(f"no cells to run: layer 'input' (the fed-back thought) exists only at latent_* positions, "
                         f"and the positions asked for are {labels[:6]}. Add residual layers or latent positions.")
    return cells


def nanmean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis, NaN ignored (NaN where every entry is NaN), without warnings.

    >>> nanmean(np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])).tolist()
    [2.0, nan]
    """
    with np.errstate(invalid="ignore"):
        n = np.isfinite(x).sum(-1)
        return np.where(n > 0, np.nansum(x, -1) / np.maximum(n, 1), np.nan)


def grid_config(model, kind: str, **kw) -> dict:
    """The config every intervention grid carries: kind, model facts, what layer -1 means, then `kw`.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> grid_config(cm, "patching", n=4)["num_latents"]
    2
    """
    return {"kind": kind, "model": model.base_name, "n_layers": model.n_layers, "d_model": model.d_model,
            "num_latents": model.config.num_latents, "layer_-1": "input: the fed-back continuous thought", **kw}


@dataclass
class CellStudy:
    """One sweep over (layer, position) cells of a CODI model's latent run (see the module docstring).

    `columns` are the grid's positions (the plan's labels, or one joined label for ablating a set together);
    `cells` the (layer, column) of each edit group, in order.

    >>> import codi
    >>> from interp.interventions.batch import prepare
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["1 + 1 = ?"], ["2"]), ["input", 2], ["bot", "latent_1"])
    >>> st.layers, st.columns, st.cells                       # 'input' exists only at latent positions
    ([-1, 2], ['bot', 'latent_1'], [(-1, 'latent_1'), (2, 'bot'), (2, 'latent_1')])
    """

    model: Any
    kind: str
    batch: Batch
    base: Baseline
    layers: list[int]
    columns: list[str]
    cells: list[tuple[int, str]]

    @classmethod
    def open(cls, model, kind: str, batch: Batch, layers: Any, positions: str | Sequence[str],
             record: Sequence[int] = (), extra: Sequence[str] = (), base: Baseline | None = None) -> CellStudy:
        """The baseline of `batch` (residuals of `record` layers; `extra` labels planned too) and every cell of
        `layers` x `positions`. `base`: a baseline of `batch` already made (`engine.from_run`: attribution's
        gradient run is its corrupt baseline), used instead of running one.

        >>> import codi
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> CellStudy.open(cm, "steering", prepare(cm, ["1 + 1 = ?"], ["2"]), [1], ["latent_1"]).cells
        [(1, 'latent_1')]
        """
        check_codi(model)
        lays = parse_layers(model, layers)
        if base is None:
            batch_labels(model, batch, positions)             # a label that does not exist: refused before any run
            base = baseline(model, batch, list(record), positions, extra)
        elif record or extra:
            raise ValueError(f"CellStudy.open: record={list(record)!r}, extra={list(extra)!r} describe a baseline to "
                             "run, but base= is given. Fix: record the residuals and plan the labels when making "
                             "that baseline (engine.baseline), or drop base=.")
        labels = run_labels(base.run, positions)
        return cls(model, kind, batch, base, lays, labels, cells_of(lays, labels))

    def run(self, groups: Sequence[Sequence[Edit]], cells_per_pass: int | None = None, max_rows: int = 256,
            share_prompt: bool = True, progress: bool = True,
            readout: tuple[int, str] | None = None) -> dict[str, Tensor]:
        """Scores of every edit group, [group, sample] (batched; with `share_prompt`, each pass starts from the
        baseline's state before the first call it edits: `engine.run_cells(resume=)`), and "edited": the
        samples each group changes (`engine.edited`), for `per_cell`.

        >>> import codi
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["1 + 1 = ?"], ["2"]), [1], "latents")
        >>> st.run([[Edit(1, "latent_0")], []], progress=False)["correct"].shape
        torch.Size([2, 1])
        """
        bar = (lambda it: tqdm(it, desc=self.kind)) if progress else None
        out = run_cells(self.model, self.batch, groups, self.base.plan, cells_per_pass, max_rows, readout=readout,
                        resume=self.base if share_prompt else None, progress=bar)
        out["edited"] = edited(groups, self.base.plan)
        return out

    def per_cell(self, values: dict[str, Tensor], cells: Sequence[tuple[int, str]] | None = None,
                 edited: Bool[Tensor, "cell sample"] | None = None) -> dict[str, np.ndarray]:
        """{name: [cell, sample, ...]} -> {name: [layer, column, sample, ...]} float64, NaN where no cell and,
        given `edited` (`run`'s), where the cell's edit left the sample alone (its label does not exist there).

        >>> import codi, torch
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["1 + 1 = ?"], ["2"]), ["input"], "latents")
        >>> st.per_cell({"x": torch.tensor([[1.0], [2.0]])})["x"].tolist()
        [[[1.0], [2.0]]]
        >>> st.per_cell({"x": torch.tensor([[1.0], [2.0]])}, edited=torch.tensor([[True], [False]]))["x"].tolist()
        [[[1.0], [nan]]]
        """
        cells = self.cells if cells is None else cells
        out = {}
        for k, v in values.items():
            arr = np.full((len(self.layers), len(self.columns)) + tuple(v.shape[1:]), np.nan)
            for c, (layer, p) in enumerate(cells):
                row = v[c].cpu().double().numpy()
                if edited is not None:
                    row = np.where(edited[c].cpu().numpy().reshape((-1,) + (1,) * (row.ndim - 1)), row, np.nan)
                arr[self.layers.index(layer), self.columns.index(p)] = row
            out[k] = arr
        return out

    def partial_cells(self, edited: Bool[Tensor, "cell sample"],
                      cells: Sequence[tuple[int, str]] | None = None) -> list[Finding]:
        """An info finding naming the cells that exist for only some samples (e.g. `q_12` where some questions
        are shorter): their metrics average over fewer samples than the grid's n.

        >>> import codi, torch
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["1 + 1 = ?", "2 + 2 = ?"], ["2", "4"]), [1], "latents")
        >>> [f.cells for f in st.partial_cells(torch.tensor([[True, True], [True, False]]))]
        [[(1, 'latent_1')]]
        """
        cells = self.cells if cells is None else cells
        n = edited.sum(1).tolist()
        part = [(c, k) for c, k in zip(cells, n) if k < edited.shape[1]]
        if not part:
            return []
        shown = ", ".join(f"{p}@{'input' if layer == INPUT else layer} ({k})" for (layer, p), k in part[:6])
        return [Finding("partial_cells", f"{len(part)} cell(s) exist for only some of the {edited.shape[1]} samples, "
                        f"so their metrics average over fewer (samples edited): {shown}"
                        f"{' ...' if len(part) > 6 else ''}", "info", [c for c, _ in part])]

    def grid(self, metrics: dict[str, np.ndarray], scores: np.ndarray | None,
             warnings: Sequence[Finding] = (), **config: Any) -> ResultGrid:
        """The neutral result grid of this study: `metrics` [layer, column], per-problem `scores`, findings and
        the config (`grid_config` + `config`, with n = the number of problems or pairs).

        >>> import codi, numpy as np
        >>> from interp.interventions.batch import prepare
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
        >>> st = CellStudy.open(cm, "ablation", prepare(cm, ["1 + 1 = ?"], ["2"]), [1], ["bot"])
        >>> st.grid({"delta_logp": np.zeros((1, 1))}, None, mode="zero").config["mode"]
        'zero'
        """
        cfg = grid_config(self.model, self.kind, **{"n": len(self.batch), **config})
        return ResultGrid(self.layers, self.columns, metrics, scores=scores, warnings=list(warnings), config=cfg)
