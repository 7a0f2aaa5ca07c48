"""ProbeGrid: the result of a probe sweep over (layer, position) cells: a `grids.ResultGrid` plus held-out scores,
labels and groups.

    >>> import numpy as np
    >>> from probes.grid import ProbeGrid
    >>> g = ProbeGrid(layers=[0, 1], positions=["last"], metrics={"auroc": np.array([[0.5], [0.9]])},
    ...               scores=np.zeros((2, 1, 4)), y=np.array([0, 1, 0, 1]), groups=np.array([0, 0, 1, 1]))
    >>> g.best("auroc")
    (1, 'last')
    >>> float(g.sel("auroc", layer=1, position="last"))
    0.9

`Finding` (the checks' result type) lives in the `grids` leaf and is re-exported here. On disk (`grid.save(folder)`,
see `grids.folder`): `grid.json` (layers, positions, metrics, warnings, config, y, groups, checksums),
`table.csv` (the tidy table) and `scores.safetensors` (held-out scores [layer, position, sample] and y); folders
written before the checksums existed (`codi-lens.probegrid/1`) still load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from jaxtyping import Float, Int

from grids import Finding, ResultGrid, read_format
from grids.finding import SEVERITIES
from grids.folder import json_safe

__all__ = ["ProbeGrid", "Finding", "SEVERITIES", "load_grid"]

PROBE_FORMATS = ("codi-lens.probegrid/1", "codi-lens.probegrid/2")


@dataclass(repr=False)
class ProbeGrid(ResultGrid):
    """Per-cell probe results: metrics[name] is a float array [n_layers, n_positions].

    Standard metric names: auroc, auroc_lo, auroc_hi (group-bootstrap 95% CI), accuracy, f1, p_value
    (group-level label permutation, per cell), p_corrected (the same permutations, family-wise corrected over all
    cells by Westfall-Young max-T: valid for the best cell), train_auroc, gap (train - test AUROC), selectivity
    (vs control task), recall_at_1pct_fpr, n_test, tn, fp, fn, tp (pooled held-out confusion matrix), best_C;
    for regression targets r2 and pearson_r instead of the classification metrics.
    `scores[l, p, i]` is the held-out decision score of sample i (NaN if it was never held out); `y` the labels,
    `groups` the sample groups the splits kept apart.

    >>> g = ProbeGrid(layers=[0, 1], positions=["latent_0", "resp_0"],
    ...               metrics={"auroc": np.array([[0.5, 0.6], [0.9, 0.7]])}, scores=np.zeros((2, 2, 4)),
    ...               y=np.array([0, 1, 0, 1]), groups=np.array(["q0", "q0", "q1", "q1"]), config={"method": "logreg"})
    >>> g
    ProbeGrid(layers=2, positions=2, samples=4, metrics=['auroc'], findings=[])
    >>> g.best(), float(g.sel("auroc", layer=1, position="resp_0")), g.table().shape
    ((1, 'latent_0'), 0.7, (4, 3))
    """

    FORMAT: ClassVar[str] = "codi-lens.probegrid/2"
    READS: ClassVar[tuple[str, ...]] = PROBE_FORMATS

    scores: Float[np.ndarray, "layer position sample"] = field(kw_only=False)
    y: Int[np.ndarray, " sample"]
    groups: np.ndarray

    def __post_init__(self) -> None:
        if self.scores is None:
            raise ValueError("a ProbeGrid needs held-out scores [layer, position, sample]; a grid without them is a "
                             "grids.ResultGrid")
        super().__post_init__()
        shape = (len(self.layers), len(self.positions))
        self.y = np.asarray(self.y)
        self.groups = np.asarray(self.groups)
        if self.scores.shape[2] != len(self.y):
            raise ValueError(f"scores has shape {self.scores.shape}, expected {shape + (len(self.y),)}")
        if len(self.groups) != len(self.y):
            raise ValueError(f"groups has {len(self.groups)} entries but y has {len(self.y)}")

    def summary(self, metric: str | None = None) -> str:
        """Human-readable summary: config, best cell, and every finding of the checks.

        >>> g = ProbeGrid([0], ["a"], {"auroc": np.array([[0.7]])}, np.zeros((1, 1, 2)), np.array([0, 1]),
        ...               np.array(["u", "v"]))
        >>> print(g.summary())
        ProbeGrid: 1 layers x 1 positions, 2 samples, 2 groups; method=None target=None folds=None
        best cell: layer 0, a: auroc=0.700 (picked on the same data: optimistic)
        checks: no findings
        """
        if metric is None:
            metric = "auroc" if "auroc" in self.metrics else next(iter(self.metrics), None)
        c = self.config
        lines = [f"ProbeGrid: {len(self.layers)} layers x {len(self.positions)} positions, "
                 f"{len(self.y)} samples, {len(np.unique(self.groups))} groups; method={c.get('method')} "
                 f"target={c.get('target')} folds={c.get('folds')}"]
        if metric is not None and np.isfinite(self.metrics[metric]).any():
            bl, bp = self.best(metric)
            parts = [f"{metric}={self.sel(metric, bl, bp):.3f}"]
            if metric == "auroc" and "auroc_lo" in self.metrics:
                parts.append(f"95% CI [{self.sel('auroc_lo', bl, bp):.3f}, {self.sel('auroc_hi', bl, bp):.3f}]")
            if self.p_text(bl, bp):
                parts.append(self.p_text(bl, bp))
            lines.append(f"best cell: layer {bl}, {bp}: " + ", ".join(parts) + " (picked on the same data: optimistic)")
            if metric == "auroc" and "gain" in self.metrics:
                lines.append(f"  text-only baseline there: AUROC {self.sel('text_auroc', bl, bp):.3f} "
                             f"[{self.sel('text_auroc_lo', bl, bp):.3f}, {self.sel('text_auroc_hi', bl, bp):.3f}]; "
                             f"white-box gain {self.sel('gain', bl, bp):+.3f} [{self.sel('gain_lo', bl, bp):+.3f}, "
                             f"{self.sel('gain_hi', bl, bp):+.3f}]")
        return "\n".join(lines + self.findings_text())

    def __repr__(self) -> str:
        return (f"ProbeGrid(layers={len(self.layers)}, positions={len(self.positions)}, samples={len(self.y)}, "
                f"metrics={sorted(self.metrics)}, findings={[w.kind for w in self.warnings]})")

    # ---------------------------------------------------------------- disk
    def payload(self) -> dict:
        """grid.json's content: the neutral grid's plus y, groups and their dtype.

        >>> g = ProbeGrid([0], ["a"], {"auroc": np.array([[0.7]])}, np.zeros((1, 1, 2)), np.array([0, 1]),
        ...               np.array(["u", "v"]))
        >>> g.payload()["groups"], g.payload()["format"]
        (['u', 'v'], 'codi-lens.probegrid/2')
        """
        return {**super().payload(), "y": json_safe(self.y), "groups": json_safe(self.groups),
                "groups_dtype": "str" if self.groups.dtype.kind in "OUS" else "num"}

    def arrays(self) -> dict[str, np.ndarray]:
        """scores.safetensors: the held-out scores and y (float64).

        >>> g = ProbeGrid([0], ["a"], {"auroc": np.array([[0.7]])}, np.zeros((1, 1, 2)), np.array([0, 1]),
        ...               np.array(["u", "v"]))
        >>> g.arrays()["y"].tolist()
        [0.0, 1.0]
        """
        return {**super().arrays(), "y": np.ascontiguousarray(self.y.astype(np.float64))}

    @classmethod
    def wrong_format(cls, path: Path, payload: dict) -> str:
        """The error text for a folder that holds no probe sweep (a neutral grid is named as such).

        >>> ProbeGrid.wrong_format(Path("p/grid.json"), {"format": "codi-lens.resultgrid/1",
        ...                                              "config": {"kind": "patching"}})[:58]
        "p/grid.json holds a result grid (kind 'patching'), not a p"
        """
        kind = payload.get("config", {}).get("kind") if isinstance(payload.get("config"), dict) else None
        if payload.get("format") == ResultGrid.FORMAT:
            return (f"{path} holds a result grid (kind {kind!r}), not a probe sweep: it has no labels or groups. "
                    "Load it with grids.ResultGrid.load(folder) (or probes.load_grid(folder)).")
        return super().wrong_format(path, payload)

    @classmethod
    def from_parts(cls, payload: dict, arrays: dict[str, np.ndarray]) -> ProbeGrid:
        """The grid from grid.json's content and scores.safetensors; the labels in both must agree.

        >>> g = ProbeGrid([0], ["a"], {"auroc": np.array([[0.7]])}, np.zeros((1, 1, 2)), np.array([0, 1]),
        ...               np.array(["u", "v"]))
        >>> ProbeGrid.from_parts(g.payload(), g.arrays()).y.tolist()
        [0, 1]
        """
        parts = cls.parts(payload, arrays)
        if parts["scores"] is None:
            raise ValueError("scores.safetensors has no 'scores' tensor")
        groups = np.array(payload["groups"], dtype=str if payload.get("groups_dtype") == "str" else None)
        y = np.array(payload["y"])
        if "y" in arrays and not np.array_equal(arrays["y"], y.astype(np.float64)):
            raise ValueError("the labels y in grid.json and in scores.safetensors differ")
        return cls(**parts, y=y, groups=groups)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ProbeGrid:
        """Read a folder written by `save` (checksums, shapes and consistency verified; errors name the file).

        >>> import tempfile, pathlib
        >>> g = ProbeGrid([0], ["a"], {"auroc": np.array([[0.7]])}, np.zeros((1, 1, 2)), np.array([0, 1]),
        ...               np.array(["u", "v"]))
        >>> ProbeGrid.load(g.save(pathlib.Path(tempfile.mkdtemp()) / "g")).groups.tolist()
        ['u', 'v']
        """
        return super().load(folder)


def load_grid(folder: str | os.PathLike) -> ResultGrid:
    """Any grid folder: a `ProbeGrid` for a probe sweep, else a `grids.ResultGrid` (ablation, patching, ...).

    >>> import tempfile, pathlib
    >>> g = ResultGrid([0], ["a"], {"x": np.array([[1.0]])}, config={"kind": "patching"})
    >>> type(load_grid(g.save(pathlib.Path(tempfile.mkdtemp()) / "g"))).__name__
    'ResultGrid'
    """
    return (ProbeGrid if read_format(folder) in PROBE_FORMATS else ResultGrid).load(folder)
