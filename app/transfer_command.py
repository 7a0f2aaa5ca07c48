"""`codi-lens transfer`: fit a probe on one cache, score another with no refit (`probes.transfer`), the threshold at
1% false positives on a control cache, which may hold only honest samples (Apollo's protocol).

    >>> from app.cli import main
    >>> main(["transfer", "--train-cache", "runs/cache-facts", "--test-cache", "runs/cache-deception",
    ...       "--control-cache", "runs/cache-values", "--control-negatives", "--out", "runs/t"])   # doctest: +SKIP

(Skipped: it needs three cache folders of yours, made by `codi-lens cache --task ...`.)

Prints the cell chosen with `--cell` (else the `--top` cells by test AUROC, marked optimistic: picked on the test
set) with AUROC and its group-bootstrap CI, recall at the 1%-FPR threshold and the FPR that threshold gives on the
test negatives; writes the grid (grid.json, table.csv, scores.safetensors) to `--out`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import argcheck

__all__ = ["add_parsers", "cmd_transfer", "common_positions"]


def add_parsers(sub) -> None:
    """The `transfer` subcommand."""
    s = sub.add_parser("transfer", help="fit a probe on one cache, score another with no refit; threshold at 1%% "
                                        "false positives on a control cache (may hold only honest samples)")
    s.add_argument("--train-cache", required=True, help="cache folder the probes are fitted on")
    s.add_argument("--test-cache", required=True, help="cache folder they are scored on (same model and layers)")
    s.add_argument("--control-cache", help="cache folder whose negatives set the threshold at 1%% FPR")
    s.add_argument("--control-negatives", action="store_true",
                   help="every control sample is a negative (honest data, e.g. ordinary questions), whatever its "
                        "label column says")
    s.add_argument("--target", default="label", help="sample-table column with the 0/1 label (default label)")
    s.add_argument("--layers", help="comma-separated layers (default: all the caches have)")
    s.add_argument("--positions", help="comma-separated positions (default: those every cache has)")
    s.add_argument("--cell", help="report this cell, e.g. '12,latent_3' (chosen without the test set)")
    s.add_argument("--top", type=int, default=5, help="without --cell: print this many best cells (optimistic)")
    s.add_argument("--C", type=float, nargs="+", help="C grid (inner group CV on the train set); default 1e-4 .. 10")
    s.add_argument("--bootstrap", type=int, default=1000, help="group-bootstrap replicates for the AUROC CI")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="folder for grid.json, table.csv, scores.safetensors")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_transfer)


def common_positions(caches: list) -> list[str]:
    """Positions every cache has, in the first cache's order.

    >>> class C:
    ...     def __init__(self, p): self.positions = p
    >>> common_positions([C(["bot", "latent_0", "resp_3"]), C(["bot", "latent_0", "resp_0"])])
    ['bot', 'latent_0']
    """
    shared = set.intersection(*(set(c.positions) for c in caches))
    return [p for p in caches[0].positions if p in shared]


def _parse_cell(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not parts[0].strip().lstrip("-").isdigit():
        raise argcheck.BadArgument("--cell", text, "must be LAYER,POSITION", "pass e.g. --cell 12,latent_3")
    return int(parts[0]), parts[1].strip()


def _check_args(args: argparse.Namespace) -> tuple[Path, tuple[int, str] | None]:
    """Every flag checked before a cache is opened or anything written."""
    for flag in ("train_cache", "test_cache", "control_cache"):
        if getattr(args, flag) is not None:
            argcheck.check_path_exists(f"--{flag.replace('_', '-')}", getattr(args, flag), kind="folder",
                                       fix="pass a folder written by interp.cache(..., out=...) / codi-lens cache")
    if args.control_negatives and args.control_cache is None:
        raise argcheck.BadArgument("--control-negatives", True, "needs --control-cache", "pass --control-cache DIR")
    argcheck.check_int("--top", args.top, min=1)
    argcheck.check_int("--bootstrap", args.bootstrap, min=10)
    out = argcheck.check_out_folder("--out", args.out)
    if (out / "grid.json").exists() and not args.overwrite:
        raise argcheck.BadArgument("--out", str(out), "already holds grid.json", "pass --overwrite or another --out")
    return out, _parse_cell(args.cell)


def _check_caches(args: argparse.Namespace, names: list[str], caches: list) -> None:
    """Same model for every set (named before anything else), a binary control label unless --control-negatives."""
    models = [str((c.meta or {}).get("model")) for c in caches]
    for name, model, c in zip(names[1:], models[1:], caches[1:]):
        if model != models[0]:
            raise argcheck.BadArgument(f"--{name}-cache", getattr(args, f"{name}_cache"),
                                       f"was cached with model {model!r}, the train cache with {models[0]!r}: a probe "
                                       f"fitted on one model's residual stream means nothing on another's",
                                       "cache both sets with the same model")
    if len(caches) == 3 and not args.control_negatives:
        col = caches[2].samples.get(args.target)
        vals = set() if col is None else set(np.unique(col.to_numpy()).tolist())
        if col is None or not vals <= {0, 1}:
            raise argcheck.BadArgument("--control-cache", args.control_cache,
                                       f"has no 0/1 column {args.target!r} (values {sorted(vals)[:6]})",
                                       "pass --control-negatives when every control sample is honest (Apollo's "
                                       "control data), or --target a 0/1 column")


def _line(grid, layer: int, pos: str, label: str) -> str:
    m = {k: float(grid.sel(k, layer, pos)) for k in grid.metrics}
    text = f"{label:<14} layer {layer:>3} {pos:<10} auroc {m['auroc']:.3f} [{m['auroc_lo']:.3f}, {m['auroc_hi']:.3f}]"
    if "recall_at_1pct_fpr" in m:
        text += (f"  recall at 1% FPR {m['recall_at_1pct_fpr']:.2f} (test FPR {m['test_fpr_at_threshold']:.2f}, "
                 f"threshold from {int(m['n_control_negatives'])} control negatives)")
    return text


def cmd_transfer(args: argparse.Namespace) -> int:
    import probes
    from interp import load_cache

    out, cell = _check_args(args)
    names = ["train", "test"] + (["control"] if args.control_cache else [])
    caches = [load_cache(getattr(args, f"{k}_cache")) for k in names]
    _check_caches(args, names, caches)
    positions = args.positions.split(",") if args.positions else common_positions(caches)
    if not positions:
        raise argcheck.BadArgument("--positions", None, "the caches share no position label",
                                   "cache the sets with the same positions, or pass --positions")
    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    ctrl = caches[2] if args.control_cache else None
    ctrl_y = np.zeros(len(ctrl), np.int64) if args.control_negatives else None
    grid = probes.transfer(caches[0], None, None, caches[1], None, None, control=ctrl, control_y=ctrl_y,
                           control_groups=None if ctrl is None or "group" in ctrl.samples else np.arange(len(ctrl)),
                           layers=layers, positions=positions, target=args.target,
                           Cs=tuple(args.C) if args.C else None, n_bootstrap=args.bootstrap, seed=args.seed)
    if cell is not None and (cell[0] not in grid.layers or cell[1] not in grid.positions):
        raise argcheck.BadArgument("--cell", args.cell, f"must be a cell of the grid (layers {grid.layers}, "
                                   f"positions {grid.positions[:8]}...)", "pick a layer and position the caches have")
    grid.config.update(train_cache=str(args.train_cache), test_cache=str(args.test_cache),
                       control_cache=args.control_cache, control_negatives=bool(args.control_negatives))
    grid.save(out)
    print(f"transfer: fit on {args.train_cache} ({grid.config['n_train']}), scored on {args.test_cache} "
          f"({grid.config['n_test']}); {len(grid.layers)} layers x {len(grid.positions)} positions"
          + (f"; control {args.control_cache} ({grid.config['n_control']}"
             f"{', all taken as negatives' if args.control_negatives else ''})" if ctrl is not None else ""))
    if cell is not None:
        print(_line(grid, *cell, "chosen cell"))
    else:
        t = grid.table().sort_values("auroc", ascending=False).head(args.top)
        for layer, pos in zip(t["layer"], t["position"]):
            print(_line(grid, int(layer), str(pos), "best (test)"))
        print("  (cells picked on the test set: optimistic; choose a cell on the training set and pass --cell)")
    for w in grid.warnings:
        print(f"  - {w}")
    print(f"wrote {out}/grid.json, table.csv, scores.safetensors")
    return 0
