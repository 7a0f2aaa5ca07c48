"""Probe sweep vs scikit-learn, like for like: the same nested analysis, the same folds, in one process, interleaved.

The baseline is `probes.reference`, the analysis a careful researcher writes with scikit-learn: per outer group fold a
Pipeline(StandardScaler, LogisticRegressionCV) (scaler fitted in the outer training fold, C among the same 6 Cs by
AUROC on the sweep's own inner group folds, refit at that C), and the permutation null refitted at each fold's
chosen C (scaler fitted once per fold). scikit-learn runs at its defaults (lbfgs, tol 1e-4) with max_iter=1000.
Rows: nested without and with the 100-permutation null, and a fixed C (no search, no null); at 1 thread and at all
threads (torch, OpenBLAS and OpenMP pools all pinned, benchmarks/machine.py; with T threads both sides fit T cells
at once, each single-threaded: the sweep's default n_jobs, scikit-learn's cells in T worker processes); CPU time
(with the workers') and wall time; median [min-max] over interleaved rounds (A B C ... A B C ...); the load average
before/after. scikit-learn is
timed on a few cells (and the null on a few relabelings) and extrapolated to the grid, which the table states.

Parts: d3072 = the seed-sized grid (29 layers x 8 positions, 576 samples in 288 pairs, d=3072) on SYNTHETIC data
(low-rank structure + noise + a weak signal growing with depth); d576 = real smollm2-135m residuals (instructed-facts,
576 samples, every layer 0..30 x the last 8 prompt tokens, cached once with interp.cache into --cache-dir).

    python benchmarks/bench_probes.py                                   # both parts, 1 and all threads, 2 rounds
    python benchmarks/bench_probes.py --parts d3072 --threads 1 --repeats 1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from machine import describe, interleaved, load_range, loadavg, pin_threads, pools, spread, thread_counts, timed

import probes
from probes.batched import fit_logreg, iter_fold_features
from probes.fitting import fit_chunk_logreg, inner_masks_for
from probes.metrics import auroc_tensor
from probes.reference import nested_logreg, permutation_null, sweep_folds
from probes.splits import permute_labels

HERE = Path(__file__).parent
warnings.filterwarnings("ignore", category=FutureWarning)


def make_data(n: int, L: int, P: int, d: int, seed: int = 0):
    """Paired samples with low-rank structure (like residual streams) and a weak signal growing with depth."""
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
            X[:, li, pi] += np.outer(y - 0.5, u) * (li / L) * 4
    return X, y, g


def smollm2_residuals(model: str, n: int, folder: Path):
    """Residuals of `model` on instructed-facts (n samples), every layer x the last 8 prompt tokens, cached once."""
    import interp

    task = probes.tasks.load("instructed-facts", n=n, seed=0)
    positions = [f"prompt[-{k}]" for k in range(8, 0, -1)]
    folder = folder / f"n{n}"                                   # one cache per sample count
    if (folder / "meta.json").exists():
        c = interp.load_cache(folder)
    else:
        c = interp.cache(interp.load_model(model), task, positions=positions, out=folder, progress=False)
    return np.ascontiguousarray(c.array(), dtype=np.float32), task.labels, task.groups


def _cells(L: int, P: int, k: int) -> list[tuple[int, int]]:
    grid = [(li, pi) for li in range(L) for pi in range(P)]
    return [grid[i] for i in np.linspace(0, len(grid) - 1, k).astype(int)]


_JOB: list = []          # the function a forked worker runs (set before the pool forks: nothing is pickled)


def _run_cell(cell) -> None:
    _JOB[0](cell)


def _single_thread_worker() -> None:
    pin_threads(1)


def cellwise(fn, cells: list, threads: int) -> None:
    """scikit-learn on `cells` with `threads` cores the way a careful user spreads it: one cell after another at one
    thread, or that many worker processes (scikit-learn's loop holds the GIL: in threads it ran slower than on one
    core), each single-threaded, forked and joined inside the timed call so their CPU time counts
    (machine.cpu_time)."""
    if threads <= 1:
        for c in cells:
            fn(c)
        return
    import multiprocessing

    _JOB[:] = [fn]
    with multiprocessing.get_context("fork").Pool(threads, initializer=_single_thread_worker) as pool:
        pool.map(_run_cell, cells, chunksize=1)
        pool.close()
        pool.join()


def compare(X, y, g, a, C_fixed: float, threads: int) -> tuple[list[list[str]], dict]:
    """One part at one thread count: the six methods interleaved; returns table rows and per-cell figures."""
    pin_threads(threads)
    n, L, P, _ = X.shape
    cells, n_cells = _cells(L, P, a.sk_cells), L * P
    splits, inner = sweep_folds(y, g, folds=5, inner_folds=3, seed=0)
    rng = np.random.default_rng(0)                              # the sweep's own relabelings, first a.sk_perms of them
    perms = np.stack([permute_labels(y, g, rng) for _ in range(a.sk_perms)])
    Xc = {c: X[:, c[0], c[1]].astype(np.float64) for c in cells}
    chosen = {c: nested_logreg(Xc[c], y, splits, inner, probes.DEFAULT_CS)["C"] for c in cells}   # untimed
    # warm-up on the last cell (earlier tokens of two statements can share their whole prefix: refused as duplicates)
    probes.sweep(X[:, -1:, -2:], labels=y, groups=g, n_permutations=2, n_bootstrap=10, progress=False)
    sw = dict(labels=y, groups=g, progress=False)
    methods = {
        "sweep_null": lambda: probes.sweep(X, n_permutations=a.permutations, **sw),
        "sweep_nonull": lambda: probes.sweep(X, n_permutations=0, **sw),
        "sweep_fixed": lambda: probes.sweep(X, Cs=(C_fixed,), n_permutations=0, **sw),
        "sk_nested": lambda: cellwise(lambda c: nested_logreg(Xc[c], y, splits, inner, probes.DEFAULT_CS), cells,
                                      threads),
        "sk_null": lambda: cellwise(lambda c: permutation_null(Xc[c], perms, splits, chosen[c]), cells, threads),
        "sk_fixed": lambda: cellwise(lambda c: nested_logreg(Xc[c], y, splits, None, (C_fixed,)), cells, threads),
    }
    t = interleaved(methods, a.repeats)
    cpu = {k: [x.cpu_s for x in v] for k, v in t.items()}
    wall = {k: [x.wall_s for x in v] for k, v in t.items()}
    # scikit-learn extrapolated to the grid: nested per cell x cells; null per (cell, relabeling) x cells x perms
    scale = {"sk_nested": n_cells / len(cells), "sk_fixed": n_cells / len(cells),
             "sk_null": n_cells * a.permutations / (len(cells) * a.sk_perms)}
    for d in (cpu, wall):
        for k, s in scale.items():
            d[k] = [v * s for v in d[k]]
        d["sk_nested_null"] = [u + v for u, v in zip(d["sk_nested"], d["sk_null"])]
    med = {k: (float(np.median(cpu[k])), float(np.median(wall[k]))) for k in cpu}
    how = {"sk_nested": f"timed on {len(cells)} cells spread over the grid, x {n_cells / len(cells):.1f}",
           "sk_fixed": f"timed on {len(cells)} cells, x {n_cells / len(cells):.1f}",
           "sk_nested_null": f"nested as above + null timed on {len(cells)} cells x {a.sk_perms} relabelings, "
                             f"x {scale['sk_null']:.0f}"}
    names = {"sweep_nonull": "probes.sweep, nested 6 C, no null", "sk_nested": "scikit-learn nested 6 C, no null",
             "sweep_null": f"probes.sweep, nested 6 C + {a.permutations}-permutation null",
             "sk_nested_null": f"scikit-learn nested 6 C + {a.permutations}-permutation null",
             "sweep_fixed": f"probes.sweep, fixed C={C_fixed:g}, no null",
             "sk_fixed": f"scikit-learn, fixed C={C_fixed:g}, no null"}
    runs = {**t, "sk_nested_null": t["sk_nested"] + t["sk_null"]}
    rows = []
    for sweep_key, sk_key in (("sweep_nonull", "sk_nested"), ("sweep_null", "sk_nested_null"),
                              ("sweep_fixed", "sk_fixed")):
        for key in (sweep_key, sk_key):
            lr = load_range(runs[key])
            rows.append([str(threads), names[key], spread(cpu[key], "{:.1f}"), spread(wall[key], "{:.1f}"),
                         f"{med[key][0] / n_cells:.2f}", how.get(key, "whole grid measured"),
                         "" if key == sweep_key else f"**{med[key][0] / med[sweep_key][0]:.1f}x** / "
                                                     f"{med[key][1] / med[sweep_key][1]:.1f}x", lr])
    return rows, {"med": med, "pools": pools(), "n_cells": n_cells}


def profile(X, y, g, C_fixed: float) -> tuple[list[list[str]], list[str]]:
    """Where one layer's time goes (its cells, 1 thread, per cell): kernel + eigendecomposition, C search and null
    refits, the fixed-C fit; beside scikit-learn's fixed-C fit of the same cells at two Cs. Returns the table rows and
    a paragraph that says when to use which, from these numbers."""
    pin_threads(1)
    n, L, P, _ = X.shape
    li = L // 2
    Xc = torch.as_tensor(np.ascontiguousarray(X[:, li].transpose(1, 0, 2)))
    splits, _ = sweep_folds(y, g, folds=5, inner_folds=3, seed=0)
    inner = inner_masks_for(splits, y, g, 3, 0)
    rng = np.random.default_rng(0)
    perms = np.stack([permute_labels(y, g, rng) for _ in range(101)])
    feats = timed(lambda: list(iter_fold_features(Xc, splits))).cpu_s / P
    nested = timed(lambda: fit_chunk_logreg(Xc, y, g, splits, perms[:1], probes.DEFAULT_CS, 3, 0, 5, 1e-5, 1000,
                                            inner_masks=inner)).cpu_s / P
    full = timed(lambda: fit_chunk_logreg(Xc, y, g, splits, perms, probes.DEFAULT_CS, 3, 0, 5, 1e-5, 1000,
                                          inner_masks=inner)).cpu_s / P
    rows = [["kernel + eigendecomposition (5 folds)", f"{feats:.3f}"],
            ["C search: 6 C x 3 inner folds (5 folds)", f"{nested - feats:.3f}"],
            ["refits of 100 relabelings at the chosen C (5 folds)", f"{full - nested:.3f}"]]
    ours, theirs = {}, {}
    for C in (0.01, C_fixed):
        ours[C] = timed(lambda: fit_chunk_logreg(Xc, y, g, splits, perms[:1], (C,), 3, 0, 5, 1e-5, 1000)).cpu_s / P
        rows.append([f"fixed C={C:g}: one fit per fold (+ kernel)", f"{ours[C]:.3f}"])
    for C in (0.01, C_fixed):
        theirs[C] = timed(lambda: [nested_logreg(X[:, li, pi].astype(np.float64), y, splits, None, (C,))
                                   for pi in range(P)]).cpu_s / P
        rows.append([f"scikit-learn fixed C={C:g}: StandardScaler + LogisticRegression per fold", f"{theirs[C]:.3f}"])

    def verdict(C):
        r = theirs[C] / ours[C]
        return f"C={C:g}: scikit-learn {'faster' if r < 1 else 'slower'}, {theirs[C]:.3f} vs {ours[C]:.3f} s/cell"
    note = [f"With a fixed C and no null each fold needs one fit, yet the sweep still pays the fold's n x n kernel and "
            f"its eigendecomposition ({feats:.3f} s/cell here, {feats / ours[C_fixed]:.0%} of its fixed-C time): the "
            f"work that makes every further fit in the fold cheap (the 18 fits of the C search, the 100 relabelings: "
            f"{nested - feats:.3f} and {full - nested:.3f} s/cell) but that one fit does not amortise. scikit-learn's "
            f"lbfgs works on the n x d data directly; its cost grows with C ({verdict(0.01)}; {verdict(C_fixed)}). "
            f"When to use which: {advice(theirs, ours)}; for a nested C search or a permutation null, use the sweep "
            "(the ratios above)."]
    return rows, note


def advice(theirs: dict, ours: dict) -> str:
    """The fixed-C verdict in words, from scikit-learn's and the sweep's s/cell per C."""
    faster = [C for C in theirs if theirs[C] < ours[C]]
    if len(faster) == len(theirs):
        return "for one fixed-C fit per cell without a null, scikit-learn is faster (the sweep adds its checks and CIs)"
    if faster:
        return (f"for one fixed-C fit per cell without a null it depends on C (scikit-learn faster at C="
                f"{', '.join(f'{C:g}' for C in faster)}): either will do")
    return ("even for one fixed-C fit per cell without a null the sweep is faster here, by less than with a search or "
            "a null (one fit does not amortise the eigendecomposition)")


def null_tolerance(X, y, g) -> list[list[str]]:
    """The null's tolerance: 100 relabelings of one fold of 8 cells at C = 1 and 10, steps and the largest change of
    a held-out AUROC against a tight fit (tol 1e-6)."""
    pin_threads(1)
    Xc = torch.as_tensor(np.ascontiguousarray(X[:, -1].transpose(1, 0, 2)))
    splits, _ = sweep_folds(y, g, folds=5, inner_folds=3, seed=0)
    tr, te = splits[0]
    F_tr, F_te, _ = next(iter_fold_features(Xc, [(tr, te)]))
    rng = np.random.default_rng(0)
    perms = np.stack([permute_labels(y, g, rng) for _ in range(100)])
    Yp = torch.as_tensor(perms[:, tr], dtype=torch.float32)
    yt = torch.as_tensor(perms[:, te], dtype=torch.float64)
    rows = []
    for C in (1.0, 10.0):
        def auc(tol):
            W, b, info = fit_logreg(F_tr, Yp, None, torch.full((len(perms),), C), tol=tol, max_iter=5000)
            S = (torch.bmm(W, F_te.transpose(1, 2)) + b[..., None]).double()
            return auroc_tensor(S, yt.expand_as(S), torch.ones_like(S)), info["iterations"]
        ref, _ = auc(1e-6)
        for tol in (1e-2, 1e-3, 1e-4):
            r = timed(lambda: auc(tol))
            (a, its) = r.result
            rows.append([f"{C:g}", f"{tol:g}", str(its), f"{r.cpu_s:.2f}", f"{float((a - ref).abs().max()):.4f}"])
    return rows


def summarise(part: str, threads: int, med: dict, n_cells: int, n_perm: int) -> str:
    """One line of like-for-like ratios (scikit-learn / sweep, CPU and wall, grid medians)."""
    def r(sk, sw):
        return f"{med[sk][0] / med[sw][0]:.1f}x CPU / {med[sk][1] / med[sw][1]:.1f}x wall"
    sw_null = med["sweep_null"]
    return (f"- **{part}, {threads} thread(s)**: sweep with the {n_perm}-permutation null {sw_null[0]:.0f} s CPU, "
            f"{sw_null[1]:.0f} s wall for {n_cells} cells (CPU / {threads} = {sw_null[0] / threads:.0f} s: a lower "
            f"bound on the wall time when idle); scikit-learn / sweep: nested without null "
            f"{r('sk_nested', 'sweep_nonull')}, nested + null {r('sk_nested_null', 'sweep_null')}, "
            f"fixed C without null {r('sk_fixed', 'sweep_fixed')}")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def run_part(part: str, a) -> list[str]:
    if part == "d3072":
        X, y, g = make_data(a.samples, a.layers, a.positions, a.d)
        what = (f"seed-sized grid on SYNTHETIC data: {a.layers} layers x {a.positions} positions, {a.samples} samples "
                f"({a.samples // 2} pairs), d={a.d}")
    else:
        X, y, g = smollm2_residuals(a.model, a.samples, Path(a.cache_dir))
        what = (f"REAL {a.model} residuals (interp.cache, instructed-facts): {X.shape[1]} layers x {X.shape[2]} "
                f"positions (the last 8 prompt tokens), {X.shape[0]} samples ({len(set(g))} groups), d={X.shape[3]}")
    rows, pool_info, summary = [], [], []
    for T in a.threads:
        r, info = compare(X, y, g, a, a.fixed_C, T)
        rows += r
        pool_info.append(f"{T} thread(s): {info['pools']}")
        summary.append(summarise(part, T, info["med"], info["n_cells"], a.permutations))
    md = [f"### {part}: {what}", ""] + summary + ["", f"Thread pools during the rows: {'; '.join(pool_info)}.", ""]
    md += table(["threads", "method", "CPU s (grid)", "wall s (grid)", "CPU s / cell", "how", "scikit-learn / sweep "
                 "(CPU / wall)", "load"], rows)
    if a.profile:
        md += ["", f"Where the time goes ({part}, one layer of {X.shape[2]} cells, 1 thread, CPU s per cell):", ""]
        prof_rows, note = profile(X, y, g, a.fixed_C)
        md += table(["step", "CPU s / cell"], prof_rows) + [""] + note
        md += ["", f"The null's tolerance ({part}: 100 relabelings of one fold, {X.shape[2]} cells batched, 1 thread):",
               ""]
        md += table(["C", "null_tol", "steps", "CPU s", "max abs AUROC change vs tol 1e-6"], null_tolerance(X, y, g))
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="d3072,d576", help="comma-separated: d3072 (synthetic), d576 (real smollm2)")
    ap.add_argument("--threads", default=",".join(map(str, thread_counts())), help="thread counts, e.g. 1,2")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds per thread count")
    ap.add_argument("--samples", type=int, default=576)
    ap.add_argument("--layers", type=int, default=29)
    ap.add_argument("--positions", type=int, default=8)
    ap.add_argument("--d", type=int, default=3072)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--sk-cells", type=int, default=4, help="cells timed with scikit-learn (then extrapolated)")
    ap.add_argument("--sk-perms", type=int, default=5, help="relabelings timed with scikit-learn (extrapolated)")
    ap.add_argument("--fixed-C", type=float, default=1.0, help="the C of the fixed-C rows (scikit-learn's default)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--cache-dir", default=str(HERE.parent / "runs" / "bench-probes-smollm2"))
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the time-split tables")
    ap.add_argument("--out", default=str(HERE / "results" / "probes.md"))
    a = ap.parse_args()
    a.threads = [int(t) for t in a.threads.split(",")]
    t0, load0 = time.perf_counter(), loadavg()
    md = ["## Probe sweep vs scikit-learn, like for like", "",
          f"Machine: {describe()}; torch {torch.__version__}, scikit-learn {sklearn.__version__}, numpy "
          f"{np.__version__}. Command: `python benchmarks/bench_probes.py {' '.join(sys.argv[1:])}`.", "",
          "Both sides in this one process, on the same arrays and folds, interleaved (every method once per round, "
          f"{a.repeats} round(s)); median [min-max]. The baseline is `probes.reference`: Pipeline(StandardScaler, "
          "LogisticRegressionCV) per outer fold on the sweep's own outer and inner group folds, the same 6 Cs, "
          "refit at the chosen C, and the null refitted at each fold's chosen C (scikit-learn defaults, lbfgs tol "
          "1e-4, max_iter 1000). The sweep's time includes what the baseline does not do (group-bootstrap CIs, the "
          "control task, the checks). Ratios: scikit-learn / sweep on the grid-extrapolated medians, CPU and wall. "
          "At T threads both sides fit T cells at once, each single-threaded: the sweep through its default n_jobs "
          "(threads, chunks of 4 cells), scikit-learn's cells in T forked worker processes (its lbfgs loop holds "
          "the GIL: in threads it ran slower than on one core), whose CPU time is counted; at 1 thread one after "
          "another.",
          ""]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    for part in a.parts.split(","):
        md += run_part(part, a) + [""]
        Path(a.out).write_text("\n".join(md + ["(run in progress)"]) + "\n")     # a part at a time, if stopped
    md += [f"Load average {load0:.1f} at the start, {loadavg():.1f} at the end (2 cores, other jobs share them); "
           f"whole script {(time.perf_counter() - t0) / 60:.1f} min."]
    text = "\n".join(md) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
