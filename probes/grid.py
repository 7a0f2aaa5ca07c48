"""ProbeGrid: the result of a probe sweep over (layer, position) cells, and the Finding type of its checks.

    >>> import numpy as np
    >>> from probes.grid import ProbeGrid
    >>> g = ProbeGrid(layers=[0, 1], positions=["last"], metrics={"auroc": np.array([[0.5], [0.9]])},
    ...               scores=np.zeros((2, 1, 4)), y=np.array([0, 1, 0, 1]), groups=np.array([0, 0, 1, 1]))
    >>> g.best("auroc")
    (1, 'last')
    >>> float(g.sel("auroc", layer=1, position="last"))
    0.9

On disk (`grid.save(folder)`): `grid.json` (layers, positions, metrics, warnings, config, y, groups),
`table.csv` (the tidy table) and `scores.safetensors` (held-out scores [layer, position, sample] and y).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jaxtyping import Float, Int

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One result of the automatic checks, e.g. kind="identical_features", severity="error".

    `cells` lists the (layer, position) cells it concerns; empty means the whole sweep.
    """

    kind: str
    message: str
    severity: str = "warning"
    cells: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding severity {self.severity!r} is not one of {SEVERITIES}")
        self.cells = [(int(l_), str(p)) for l_, p in self.cells]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cells"] = [[l_, p] for l_, p in self.cells]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(kind=d["kind"], message=d["message"], severity=d.get("severity", "warning"),
                   cells=[(int(c[0]), str(c[1])) for c in d.get("cells", [])])

    def __str__(self) -> str:
        where = ""
        if self.cells:
            shown = ", ".join(f"L{l_}/{p}" for l_, p in self.cells[:6])
            more = f" (+{len(self.cells) - 6} more)" if len(self.cells) > 6 else ""
            where = f" [{shown}{more}]"
        return f"{self.severity.upper()} {self.kind}: {self.message}{where}"


def _json_safe(x: Any) -> Any:
    """Convert numpy values to JSON-able python (NaN/inf -> None)."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json_safe(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


def _from_json_array(x: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=np.float64)


@dataclass
class ProbeGrid:
    """Per-cell probe results: metrics[name] is a float array [n_layers, n_positions].

    Standard metric names: auroc, auroc_lo, auroc_hi (group-bootstrap 95% CI), accuracy, f1, p_value
    (group-level label permutation, per cell), p_corrected (the same permutations, family-wise corrected over all
    cells by Westfall-Young max-T: valid for the best cell), train_auroc, gap (train - test AUROC), selectivity
    (vs control task), recall_at_1pct_fpr, n_test, tn, fp, fn, tp (pooled held-out confusion matrix), best_C;
    for regression targets r2 and pearson_r instead of the classification metrics.
    `scores[l, p, i]` is the held-out decision score of sample i (NaN if it was never held out).
    """

    layers: list[int]
    positions: list[str]
    metrics: dict[str, np.ndarray]
    scores: Float[np.ndarray, "layer position sample"]
    y: Int[np.ndarray, " sample"]
    groups: np.ndarray
    warnings: list[Finding] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = [int(x) for x in self.layers]
        self.positions = [str(x) for x in self.positions]
        shape = (len(self.layers), len(self.positions))
        self.metrics = {k: np.asarray(v, dtype=np.float64) for k, v in self.metrics.items()}
        for k, v in self.metrics.items():
            if v.shape != shape:
                raise ValueError(f"metric {k!r} has shape {v.shape}, expected [layers, positions] = {shape}")
        self.scores = np.asarray(self.scores, dtype=np.float32)
        self.y = np.asarray(self.y)
        self.groups = np.asarray(self.groups)
        if self.scores.shape[:2] != shape or self.scores.shape[2] != len(self.y):
            raise ValueError(f"scores has shape {self.scores.shape}, expected {shape + (len(self.y),)}")
        if len(self.groups) != len(self.y):
            raise ValueError(f"groups has {len(self.groups)} entries but y has {len(self.y)}")

    # ---------------------------------------------------------------- lookup
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
        """Metric values: full [L, P] array, a row/column, or one float.

        >>> grid.sel("auroc", layer=9)                  # [n_positions]
        >>> grid.sel("auroc", layer=9, position="latent_3")
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

        Picking the best of many cells on the same data that reports it is optimistic: quote its `p_corrected`
        (max-T over cells), or sweep with test_size and use `probes.pick_best(grid)` to pick on CV and report on
        held-out groups.
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
        "" without a p_value.

        >>> grid.p_text(*grid.best())
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
        """Tidy table, one row per cell: layer, position, then every metric as a column."""
        L, P = len(self.layers), len(self.positions)
        df = pd.DataFrame({"layer": np.repeat(self.layers, P), "position": np.tile(self.positions, L)})
        first = ["auroc", "auroc_lo", "auroc_hi", "accuracy", "f1", "p_value", "p_corrected"]
        names = [k for k in first if k in self.metrics] + sorted(k for k in self.metrics if k not in first)
        for k in names:
            df[k] = self.metrics[k].reshape(-1)
        return df

    def summary(self, metric: str | None = None) -> str:
        """Human-readable summary: config, best cell, and every finding of the checks."""
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
        if self.warnings:
            lines.append(f"checks: {len(self.warnings)} finding(s)")
            lines += [f"  - {w}" for w in self.warnings]
        else:
            lines.append("checks: no findings")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ProbeGrid(layers={len(self.layers)}, positions={len(self.positions)}, samples={len(self.y)}, "
                f"metrics={sorted(self.metrics)}, findings={[w.kind for w in self.warnings]})")

    # ---------------------------------------------------------------- disk
    def save(self, folder: str | Path) -> Path:
        """Write grid.json, table.csv and scores.safetensors into `folder` (created if missing)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        payload = {
            "format": "codi-lens.probegrid/1",
            "layers": self.layers, "positions": self.positions,
            "metrics": _json_safe(self.metrics),
            "warnings": [w.to_dict() for w in self.warnings],
            "config": _json_safe(self.config),
            "y": _json_safe(self.y), "groups": _json_safe(self.groups),
            "groups_dtype": "str" if self.groups.dtype.kind in "OUS" else "num",
        }
        text = json.dumps(payload, indent=1)  # serialise before creating anything
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "grid.json").write_text(text)
        self.table().to_csv(folder / "table.csv", index=False)
        save_file({"scores": np.ascontiguousarray(self.scores, dtype=np.float32),
                   "y": np.ascontiguousarray(self.y.astype(np.float64))}, str(folder / "scores.safetensors"))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ProbeGrid:
        """Read a folder written by `save`."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / "grid.json").exists():
            raise FileNotFoundError(f"{folder}/grid.json not found: is this a folder written by ProbeGrid.save?")
        d = json.loads((folder / "grid.json").read_text())
        t = load_file(str(folder / "scores.safetensors"))
        groups = np.array(d["groups"], dtype=str if d.get("groups_dtype") == "str" else None)
        y = np.array(d["y"])
        return cls(layers=d["layers"], positions=d["positions"],
                   metrics={k: _from_json_array(v) for k, v in d["metrics"].items()},
                   scores=t["scores"], y=y, groups=groups,
                   warnings=[Finding.from_dict(w) for w in d["warnings"]], config=d["config"])
