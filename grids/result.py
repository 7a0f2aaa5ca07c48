"""ResultGrid: the result of any sweep over (layer, position) cells: named metrics [layer, position], findings, config.

Ablation, patching, steering and attribution return one; `probes.ProbeGrid` is a ResultGrid that adds what only a
probe sweep has (held-out scores with their labels and groups). Figures (`viz`) take any ResultGrid.

    >>> import numpy as np
    >>> from grids import ResultGrid, Finding
    >>> g = ResultGrid([-1, 0, 1], ["latent_0", "latent_1"], {"recovered": np.array([[0.9, 0.1], [0.2, 0.0],
    ...                [0.5, 0.3]])}, warnings=[Finding("no_effect", "none", "info")], config={"kind": "patching"})
    >>> g.best("recovered")
    (-1, 'latent_0')
    >>> g.sel("recovered", layer=1).tolist()
    [0.5, 0.3]
    >>> g.table().shape
    (6, 3)

Layers are ints (`-1` = the fed-back continuous thought, `0..n_layers` the residual stream), positions are labels
(`poslabels`). `scores` (optional) holds a per-sample value of every cell [layer, position, sample]: a probe's
held-out decision score, an intervention's per-problem effect. On disk: see `grids.folder`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from jaxtyping import Float

from grids.config import GridConfig
from grids.finding import Finding
from grids.folder import REWRITE, from_json_array, json_safe, read_folder, write_folder

__all__ = ["ResultGrid", "FIRST_COLUMNS"]

FIRST_COLUMNS = ("auroc", "auroc_lo", "auroc_hi", "accuracy", "f1", "p_value", "p_corrected")  # table order


@dataclass
class ResultGrid:
    """Per-cell results: `metrics[name]` is a float array [n_layers, n_positions] (NaN = no value there).

    `warnings`: findings of checks (`Finding`); `config`: the settings (`GridConfig`, a dict with typed keys);
    `scores`: optional per-sample values [layer, position, sample].

    >>> ResultGrid([0], ["bot"], {"delta_logp": np.zeros((1, 1))}, config={"kind": "ablation"}).config.kind
    'ablation'
    """

    FORMAT: ClassVar[str] = "codi-lens.resultgrid/1"
    READS: ClassVar[tuple[str, ...]] = ("codi-lens.resultgrid/1", "codi-lens.probegrid/1", "codi-lens.probegrid/2")

    layers: list[int]
    positions: list[str]
    metrics: dict[str, np.ndarray]
    scores: Float[np.ndarray, "layer position sample"] | None = field(default=None, kw_only=True)
    warnings: list[Finding] = field(default_factory=list, kw_only=True)
    config: dict = field(default_factory=GridConfig, kw_only=True)

    def __post_init__(self) -> None:
        self.layers = [int(x) for x in self.layers]
        self.positions = [str(x) for x in self.positions]
        shape = (len(self.layers), len(self.positions))
        self.metrics = {str(k): np.asarray(v, dtype=np.float64) for k, v in self.metrics.items()}
        for k, v in self.metrics.items():
            if v.shape != shape:
                raise ValueError(f"metric {k!r} has shape {v.shape}, expected [layers, positions] = {shape}")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
            if self.scores.ndim != 3 or self.scores.shape[:2] != shape:
                raise ValueError(f"scores has shape {self.scores.shape}, expected {shape} + (samples,)")
        self.warnings = list(self.warnings)
        if not isinstance(self.config, GridConfig):
            self.config = GridConfig(self.config or {})

    @property
    def n_samples(self) -> int | None:
        """Samples (problems, pairs) behind each cell: the scores' last axis, else config 'n', else None.

        >>> ResultGrid([0], ["bot"], {}, config={"n": 12}).n_samples
        12
        """
        if self.scores is not None:
            return int(self.scores.shape[2])
        return self.config.n

    # ---------------------------------------------------------------- lookup
    def cell_index(self, layer: int, position: str) -> tuple[int, int]:
        """(row, column) of a cell in the metric arrays; a KeyError names what the grid has instead.

        >>> import numpy as np
        >>> g = ResultGrid(layers=[0, 4], positions=["bot", "latent_0"], metrics={"auroc": np.zeros((2, 2))})
        >>> g.cell_index(4, "latent_0")
        (1, 1)
        """
        return self._li(layer), self._pi(position)

    def _li(self, layer: int) -> int:
        if int(layer) not in self.layers:
            raise KeyError(f"layer {layer} is not in this grid; it has layers {self.layers}")
        return self.layers.index(int(layer))

    def _pi(self, position: str) -> int:
        if str(position) not in self.positions:
            raise KeyError(f"position {position!r} is not in this grid; it has {self.positions[:12]}"
                           f"{' ...' if len(self.positions) > 12 else ''}")
        return self.positions.index(str(position))

    def sel(self, metric: str, layer: int | None = None, position: str | None = None):
        """Metric values: full [L, P] array, a row (one layer), a column (one position), or one float.

        >>> g = ResultGrid([0, 9], ["bot", "latent_3"], {"auroc": np.array([[0.5, 0.6], [0.7, 0.8]])})
        >>> g.sel("auroc", layer=9).tolist(), g.sel("auroc", layer=9, position="latent_3")
        ([0.7, 0.8], 0.8)
        """
        if metric not in self.metrics:
            raise KeyError(f"metric {metric!r} not in this grid; available: {sorted(self.metrics)}")
        m = self.metrics[metric]
        if layer is not None:
            m = m[self._li(layer)]
            return float(m[self._pi(position)]) if position is not None else m
        if position is not None:
            return m[:, self._pi(position)]
        return m

    def best(self, metric: str = "auroc", positions: list[str] | None = None,
             layers: list[int] | None = None) -> tuple[int, str]:
        """The (layer, position) cell with the highest `metric` (NaN ignored), optionally among some cells.

        Picking the best of many cells on the same data that reports it is optimistic: for probes quote its
        `p_corrected` (max-T over cells), or pick on one half and report on the other (`probes.pick_best`).

        >>> g = ResultGrid([0, 1], ["a", "b"], {"x": np.array([[1.0, 5.0], [np.nan, 2.0]])})
        >>> g.best("x"), g.best("x", positions=["a"])
        ((0, 'b'), (0, 'a'))
        """
        m = self.sel(metric).copy()
        mask = np.ones_like(m, dtype=bool)
        if positions is not None:
            mask[:, [i for i, p in enumerate(self.positions) if p not in set(positions)]] = False
        if layers is not None:
            mask[[i for i, l_ in enumerate(self.layers) if l_ not in set(layers)], :] = False
        m[~mask | ~np.isfinite(m)] = -np.inf
        if not np.isfinite(m).any():
            raise ValueError(f"no finite {metric!r} value among the selected cells")
        li, pi = np.unravel_index(int(np.argmax(m)), m.shape)
        return self.layers[li], self.positions[pi]

    def p_text(self, layer: int, position: str) -> str:
        """Which p-values a cell has, in words: "p = 0.01 (uncorrected), p_FWER = 0.2 (max-T over 120 cells)";
        "" when the grid has no p_value there.

        >>> g = ResultGrid([0], ["a"], {"p_value": np.array([[0.25]])})
        >>> g.p_text(0, "a")
        'p = 0.25 (uncorrected)'
        """
        li, pi = self._li(layer), self._pi(position)
        if "p_value" not in self.metrics or not np.isfinite(self.metrics["p_value"][li, pi]):
            return ""
        n_perm = self.config.get("n_permutations")
        floor = 1.0 / (int(n_perm) + 1) if isinstance(n_perm, int) and n_perm > 0 else None

        def at_floor(p: float) -> str:
            # the smallest p that n permutations allow is 1 / (n + 1); say so instead of implying more
            return f"; the floor for {n_perm} permutations" if floor is not None and p <= floor * (1 + 1e-9) else ""

        p = float(self.metrics["p_value"][li, pi])
        text = f"p = {p:.3g} (uncorrected{at_floor(p)})"
        pc = self.metrics.get("p_corrected")
        if pc is not None and np.isfinite(pc[li, pi]):
            text += (f", p_FWER = {pc[li, pi]:.3g} (max-T over {int(np.isfinite(pc).sum())} cells"
                     f"{at_floor(float(pc[li, pi]))})")
        return text

    def table(self) -> pd.DataFrame:
        """Tidy table, one row per cell: layer, position, then every metric as a column.

        >>> ResultGrid([0], ["a", "b"], {"x": np.array([[1.0, 2.0]])}).table().to_dict("list")
        {'layer': [0, 0], 'position': ['a', 'b'], 'x': [1.0, 2.0]}
        """
        L, P = len(self.layers), len(self.positions)
        df = pd.DataFrame({"layer": np.repeat(self.layers, P), "position": np.tile(self.positions, L)})
        names = [k for k in FIRST_COLUMNS if k in self.metrics] + sorted(k for k in self.metrics
                                                                          if k not in FIRST_COLUMNS)
        for k in names:
            df[k] = self.metrics[k].reshape(-1)
        return df

    def findings_text(self) -> list[str]:
        """The summary's lines about the checks' findings.

        >>> ResultGrid([0], ["a"], {}).findings_text()
        ['checks: no findings']
        """
        if not self.warnings:
            return ["checks: no findings"]
        return [f"checks: {len(self.warnings)} finding(s)"] + [f"  - {w}" for w in self.warnings]

    def summary(self, metric: str | None = None) -> str:
        """Human-readable summary: what made the grid, its size, the best cell of `metric`, every finding.

        >>> g = ResultGrid([0], ["a", "b"], {"x": np.array([[1.0, 2.0]])}, config={"kind": "ablation", "n": 4})
        >>> print(g.summary())
        ResultGrid (ablation): 1 layers x 2 positions, 4 samples; model=None
        best cell: layer 0, b: x=2.000
        checks: no findings
        """
        metric = metric if metric is not None else next(iter(self.metrics), None)
        c = self.config
        lines = [f"ResultGrid ({c.kind or 'results'}): {len(self.layers)} layers x {len(self.positions)} positions, "
                 f"{self.n_samples if self.n_samples is not None else '?'} samples; model={c.model}"]
        if metric is not None and np.isfinite(self.metrics[metric]).any():
            bl, bp = self.best(metric)
            lines.append(f"best cell: layer {bl}, {bp}: {metric}={self.sel(metric, bl, bp):.3f}")
        return "\n".join(lines + self.findings_text())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kind={self.config.kind!r}, layers={len(self.layers)}, "
                f"positions={len(self.positions)}, metrics={sorted(self.metrics)}, "
                f"findings={[w.kind for w in self.warnings]})")

    # ---------------------------------------------------------------- disk
    def payload(self) -> dict:
        """grid.json's content (JSON-able), without the checksums `grids.folder` adds.

        >>> ResultGrid([0], ["a"], {"x": np.array([[np.nan]])}).payload()["metrics"]
        {'x': [[None]]}
        """
        return {"format": self.FORMAT, "layers": self.layers, "positions": self.positions,
                "metrics": json_safe(self.metrics), "warnings": [w.to_dict() for w in self.warnings],
                "config": json_safe(dict(self.config))}

    def arrays(self) -> dict[str, np.ndarray]:
        """What goes into scores.safetensors ({} when the grid has no per-sample values).

        >>> sorted(ResultGrid([0], ["a"], {}, scores=np.zeros((1, 1, 3))).arrays())
        ['scores']
        """
        return {} if self.scores is None else {"scores": np.ascontiguousarray(self.scores, dtype=np.float32)}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write grid.json, table.csv (and scores.safetensors) into `folder`, atomically (see `grids.folder`).

        >>> import tempfile, pathlib
        >>> g = ResultGrid([0], ["a"], {"x": np.array([[1.5]])}, scores=np.ones((1, 1, 2)))
        >>> h = ResultGrid.load(g.save(pathlib.Path(tempfile.mkdtemp()) / "g"))
        >>> float(h.sel("x", 0, "a")), h.scores.shape
        (1.5, (1, 1, 2))
        """
        return write_folder(folder, self.payload(), self.table().to_csv(index=False), self.arrays())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ResultGrid:
        """Read a folder written by `save` (any grid folder: a probe grid is read without its labels), verified:
        checksums, shapes and consistency; errors name the file and the fix.

        >>> import tempfile, pathlib
        >>> d = ResultGrid([0], ["a"], {"x": np.array([[2.0]])}).save(pathlib.Path(tempfile.mkdtemp()) / "g")
        >>> _ = (d / "table.csv").write_text("layer,position,x\\n0,a,3.0\\n")      # a hand edit
        >>> ResultGrid.load(d)
        Traceback (most recent call last):
        ...
        ValueError: .../g/table.csv does not match the checksum recorded when it was written: ...
        """
        payload, arrays = read_folder(folder)
        path = Path(folder) / "grid.json"
        fmt = payload.get("format")
        if fmt not in cls.READS:
            raise ValueError(cls.wrong_format(path, payload))
        try:
            return cls.from_parts(payload, arrays)
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise ValueError(f"{path}: {err}; the folder's files disagree (damaged or edited by hand). To fix it, "
                             f"{REWRITE}.") from None

    @classmethod
    def wrong_format(cls, path: Path, payload: dict) -> str:
        """The error text for a grid.json this class does not read.

        >>> ResultGrid.wrong_format(Path("g/grid.json"), {"format": "x/9"})[:45]
        "g/grid.json has format 'x/9'; ResultGrid.load"
        """
        return (f"{path} has format {payload.get('format')!r}; {cls.__name__}.load reads {list(cls.READS)}. "
                "Is this a folder written by grid.save(folder)?")

    @classmethod
    def parts(cls, payload: dict, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Constructor arguments from grid.json's content and the arrays, with the checks every grid needs.

        >>> g = ResultGrid([0], ["a"], {"x": np.array([[1.0]])})
        >>> sorted(ResultGrid.parts(g.payload(), g.arrays()))
        ['config', 'layers', 'metrics', 'positions', 'scores', 'warnings']
        >>> ResultGrid.parts({**g.payload(), "layers": [0, 0]}, {})
        Traceback (most recent call last):
        ...
        ValueError: layers repeat an entry: [0, 0]
        """
        layers, positions = payload["layers"], payload["positions"]
        if not isinstance(layers, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
            raise ValueError(f"layers must be a list of ints, got {layers!r:.80}")
        if not isinstance(positions, list) or not all(isinstance(x, str) for x in positions):
            raise ValueError(f"positions must be a list of labels, got {positions!r:.80}")
        for name, items in (("layers", layers), ("positions", positions)):
            if len(set(items)) != len(items):
                raise ValueError(f"{name} repeat an entry: {items!r:.80}")
        metrics = {k: from_json_array(v) for k, v in payload["metrics"].items()}
        warnings = [Finding.from_dict(w) for w in payload["warnings"]]
        bad = [c for w in warnings for c in w.cells if c[0] not in layers or c[1] not in positions]
        if bad:
            raise ValueError(f"findings name cells that are not in the grid: {bad[:3]}")
        if not isinstance(payload["config"], dict):
            raise ValueError("config must be a JSON object")
        scores = arrays.get("scores")
        return {"layers": layers, "positions": positions, "metrics": metrics, "scores": scores,
                "warnings": warnings, "config": payload["config"]}

    @classmethod
    def from_parts(cls, payload: dict, arrays: dict[str, np.ndarray]) -> ResultGrid:
        """The grid from grid.json's content and the arrays of scores.safetensors (checked).

        >>> g = ResultGrid([0], ["a"], {"x": np.array([[1.0]])}, scores=np.ones((1, 1, 2)))
        >>> ResultGrid.from_parts(g.payload(), g.arrays()).scores.shape
        (1, 1, 2)
        """
        return cls(**cls.parts(payload, arrays))
