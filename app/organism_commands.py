"""`codi-lens organism ...`: train a model organism here, list the shipped ones, run their studies.

    >>> from app.cli import main
    >>> main(["organism", "list"])                                                      # doctest: +SKIP
    >>> main(["organism", "train", "--depth", "3", "--out", "runs/pointer3"])          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

__all__ = ["cmd_organism_train", "cmd_organism_list", "cmd_organism_study", "organism_rows"]


def organism_rows() -> list[dict]:
    """One row per shipped organism: name, task, thoughts, size and the shipped held-out accuracy."""
    import codi

    rows = []
    for name in codi.organisms.available():
        folder = codi.organisms.folder(name)
        meta = json.loads((folder / "organism.json").read_text())
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append(dict(name=name, task=meta["task"], accuracy=meta["accuracy"], wall=meta["wall"],
                         size_mb=round(size / 2**20, 2), folder=str(folder)))
    return rows


def cmd_organism_list(args: argparse.Namespace) -> int:
    print(f"{'organism':<10} {'task':<24} {'size':>8}  direct  written  CODI  zeroed  chance   n")
    for r in organism_rows():
        t, a = r["task"], r["accuracy"]
        what = f"{t['depth']}-hop {t['family']}, {t['nodes']} nodes"
        print(f"{r['name']:<10} {what:<24} {r['size_mb']:>5} MB  {a['direct']:.3f}   {a['written']:.3f}   "
              f"{a['codi']:.3f} {a['codi_zero']:.3f}   {a['chance']:.3f}  {a['n']}")
    return 0


def cmd_organism_train(args: argparse.Namespace) -> int:
    from codi.organisms.base import BaseSpec
    from codi.organisms.train import OrganismSpec, train_organism

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"--out {out} exists; choose a new folder (the organism is written there at the end)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    spec = OrganismSpec(family=args.family, depth=args.depth, codi_steps=args.codi_steps, seed=args.seed,
                        base=BaseSpec(steps=args.base_steps, seed=args.seed))
    spec.task()  # validates family and depth before any training
    t0 = time.time()
    meta = train_organism(spec, out, progress=lambda s: print(s, flush=True))
    a = meta["accuracy"]
    w = meta["wall"]
    print(f"wall time {time.time() - t0:.0f} s (base {w['base_s']:.0f} s, CODI {w['codi_s']:.0f} s); "
          f"held-out: direct {a['direct']:.3f}, written {a['written']:.3f}, CODI {a['codi']:.3f}, zeroed "
          f"{a['codi_zero']:.3f} (chance {a['chance']:.3f}); folder {out}")
    return 0


def cmd_organism_study(args: argparse.Namespace) -> int:
    from app.demo_organism import organism_stage

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary, sections = organism_stage(args.name, n=args.n, n_pairs=args.pairs, n_permutations=args.permutations)
    for heading, content in sections:
        if isinstance(content, str):
            print(f"## {heading}\n\n{content}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


def add_parsers(sub) -> None:
    """The `organism` subcommand and its verbs (list, train, study)."""
    s = sub.add_parser("organism", help="model organisms: tiny CODI models whose thoughts do the work "
                                        "(list, train here, study)")
    verbs = s.add_subparsers(dest="verb", required=True)
    v = verbs.add_parser("list", help="the shipped organisms with their held-out accuracy")
    v.set_defaults(func=cmd_organism_list)
    v = verbs.add_parser("train", help="train an organism from scratch on this CPU (base, then CODI), with progress")
    v.add_argument("--family", default="pointer", help="task family: pointer (k-hop pointer chasing) or modular")
    v.add_argument("--depth", type=int, default=3, help="hops / operations (thoughts = depth - 1)")
    v.add_argument("--out", required=True, help="new folder for the organism (a normal CODI checkpoint)")
    v.add_argument("--base-steps", type=int, default=6000, help="steps of the from-scratch base")
    v.add_argument("--codi-steps", type=int, default=1500, help="steps of the CODI stage (depth 4 shipped: 3000)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    v.set_defaults(func=cmd_organism_train)
    v = verbs.add_parser("study", help="accuracy, probes, logit lens and patching of a shipped organism")
    v.add_argument("name", help="a shipped organism (codi-lens organism list)")
    v.add_argument("--n", type=int, default=500, help="held-out problems")
    v.add_argument("--pairs", type=int, default=200, help="patching pairs per hop")
    v.add_argument("--permutations", type=int, default=20)
    v.add_argument("--json", help="also write the summary to this JSON file")
    v.add_argument("--threads", type=int, default=1)
    v.set_defaults(func=cmd_organism_study)
