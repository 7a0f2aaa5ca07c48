"""Probe sweep speed: probes.sweep (batched torch) vs a scikit-learn LogisticRegressionCV loop, one run.

Seed-sized grid by default: 29 layers x 8 positions, 576 samples (288 paired groups), d=3072, 5 outer folds x 6 C
values, plus a 100-permutation null. scikit-learn is timed on a few cells and extrapolated to the grid (stated in
the table); with the null it would refit everything 100 more times.

    python benchmarks/bench_probes.py                       # full seed-sized grid
    python benchmarks/bench_probes.py --layers 4 --sk-cells 2   # quicker: measured on 4 layers, extrapolated
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import probes


def make_data(n: int, L: int, P: int, d: int, seed: int = 0):
    """Paired samples with low-rank structure (like residual streams) and a weak signal in some cells."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    g = np.repeat(np.arange(n // 2), 2)
    basis = rng.normal(size=(16, d)).astype(np.float32)
    u = rng.normal(size=d).astype(np.float32)
    u /= np.linalg.norm(u)
    X = np.empty((n, L, P, d), np.float32)
    for li in range(L):
        for pi in range(P):
            z = rng.normal(size=(n, 16)).astype(np.float32) * 3
            X[:, li, pi] = z @ basis + rng.normal(size=(n, d)).astype(np.float32)
            X[:, li, pi] += np.outer(y - 0.5, u) * (li / L) * 4          # signal grows with depth
    return X, y, g


def sklearn_cell(X, y, g, Cs, folds):
    """scikit-learn reference for one cell: StandardScaler + LogisticRegressionCV (group folds, AUROC)."""
    cv = list(GroupKFold(n_splits=folds).split(X, y, g))
    est = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=list(Cs), cv=cv, scoring="roc_auc",
                                                               max_iter=1000))
    est.fit(X, y)
    return est


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=576)
    ap.add_argument("--layers", type=int, default=29)
    ap.add_argument("--positions", type=int, default=8)
    ap.add_argument("--d", type=int, default=3072)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--sk-cells", type=int, default=3, help="cells timed with scikit-learn (then extrapolated)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default); on a shared, "
                    "oversubscribed machine 1 thread is much faster (run with OMP_NUM_THREADS=1 for both sides)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "probes.md"))
    a = ap.parse_args()
    L, P = a.layers, a.positions
    if a.threads:
        torch.set_num_threads(a.threads)
    Cs = probes.DEFAULT_CS
    X, y, g = make_data(a.samples, L, P, a.d)
    dev = "cuda" if torch.cuda.is_available() else "cpu"

    t0 = time.perf_counter()
    grid = probes.sweep(X, labels=y, groups=g, Cs=Cs, folds=5, n_permutations=a.permutations, progress=True)
    t_ours = time.perf_counter() - t0
    full = 29 * 8
    t_ours_full = t_ours * full / (L * P)
    t0 = time.perf_counter()
    probes.sweep(X[:, :1, :1], labels=y, groups=g, Cs=Cs, folds=5, n_permutations=0, progress=False)
    t_ours_1cell_nonull = time.perf_counter() - t0

    cells = [(li, pi) for li in range(L) for pi in range(P)]
    pick = [cells[i] for i in np.linspace(0, len(cells) - 1, a.sk_cells).astype(int)]
    t0 = time.perf_counter()
    for li, pi in pick:
        sklearn_cell(X[:, li, pi], y, g, Cs, 5)
    t_sk_cell = (time.perf_counter() - t0) / len(pick)
    n_cells = L * P
    t_sk_grid = t_sk_cell * n_cells
    t_sk_null = t_sk_grid * (1 + a.permutations)

    best = grid.best()
    rows = [
        ("scikit-learn LogisticRegressionCV loop, no null", f"{t_sk_grid:.0f} s", f"measured {t_sk_cell:.2f} s/cell "
         f"on {len(pick)} cells x {n_cells} cells (extrapolated); C by plain 5-fold CV, not nested"),
        (f"scikit-learn, + {a.permutations}-permutation null", f"{t_sk_null / 3600:.1f} h",
         f"extrapolated: {1 + a.permutations} x the grid"),
        (f"probes.sweep, + {a.permutations}-permutation null", f"{t_ours:.1f} s",
         f"measured, whole grid; nested CV (3 inner folds) x 6 C, refitted null, bootstrap CIs, checks ({dev})"),
        ("speed-up with null", f"{t_sk_null / t_ours:.0f}x", ""),
        ("probes.sweep, + null, extrapolated to 29 x 8 cells", f"{t_ours_full:.0f} s",
         "measured time x 232 / cells run" if L * P != full else "measured (full grid)"),
    ]
    md = [f"# Probe sweep benchmark ({L} layers x {P} positions, {a.samples} samples, d={a.d}, 5 folds x "
          f"{len(Cs)} C, {a.permutations} permutations)", "",
          f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
          f"{torch.__version__} threads={torch.get_num_threads()}, device {dev}. Shared machine: other jobs were "
          f"running, so absolute times are noisy; both sides ran in this one process.", "",
          "| what | time | how |", "|---|---|---|"] + [f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows] + [
          "", f"One cell without null, ours: {t_ours_1cell_nonull:.2f} s (includes fixed overheads).",
          f"Best cell found: layer {best[0]}, position {best[1]}, AUROC {grid.sel('auroc', *best):.3f}; "
          f"findings: {[w.kind for w in grid.warnings]}."]
    text = "\n".join(md) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
