"""`codi-lens organism ...`: train a model organism here, list the shipped ones, run their studies.

    >>> from app.cli import main
    >>> main(["organism", "list"])
    organism   task                         size  direct  written  CODI  zeroed  chance   n
    pointer2   2-hop pointer, 8 nodes    ...
    0
    >>> main(["organism", "train", "--depth", "3", "--out", "runs/pointer3"])  # ~8 min on 2 cores  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import formats

__all__ = ["cmd_organism_train", "cmd_organism_list", "cmd_organism_study", "cmd_organism_compare",
           "compare_organisms", "organism_rows"]


def organism_rows() -> list[dict]:
    """One row per shipped organism: name, task, thoughts, size and the shipped held-out accuracy.

    >>> r = organism_rows()[0]
    >>> r["name"], r["task"], r["accuracy"]["codi"] > 0.9
    ('pointer2', {'family': 'pointer', 'depth': 2, 'nodes': 8, 'names': 12}, True)
    """
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
        formats.atomic_write_text(args.json, json.dumps(summary, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


def compare_organisms(names: list[str], out: str | Path, n: int = 500, n_pairs: int = 200,
                      n_permutations: int = 20) -> Path:
    """One report across organisms of different depth: a table of accuracy, probe, lens and patching numbers per
    organism, then the hop-1 probe grids side by side (viz.report's comparison across models)."""
    import numpy as np

    import codi
    import viz
    from app.organism_study import study
    from codi.organisms.train import accuracy_table

    if not names:
        raise ValueError(f"no organisms to compare; shipped: {codi.organisms.available()}")
    rows, grids, labels, details = [], [], [], []
    for name in names:
        cm, _ = codi.organisms.load(name)
        task = codi.organisms.task_of(name)
        a = accuracy_table(cm, task, n=n)
        res = study(cm, task, n=n, n_pairs=n_pairs, n_permutations=n_permutations, name=name)
        best = [res.probe[s].sel("accuracy", *res.probe[s].best("accuracy")) for s in res.probe]
        diag = np.diag(res.lens[:, :res.lens.shape[0]]) if res.lens.size else np.array([])
        rows.append(f"{name:<10} {task.depth:>4} {cm.config.num_latents:>8} {a['direct']:>7.3f} {a['written']:>8.3f} "
                    f"{a['codi']:>6.3f} {a['codi_zero']:>7.3f}  {' '.join(f'{x:.2f}' for x in best):<20} "
                    f"{' '.join(f'{x:.2f}' for x in diag):<16} "
                    f"{' '.join(f'{v:.2f}' for v in res.counterfactual.values())}")
        grids.append(res.probe[1])
        labels.append(f"{name}: value after hop 1")
        details.append((f"{name}: probes, logit lens and patching", res.markdown()))
    head = (f"{'organism':<10} {'hops':>4} {'thoughts':>8} {'direct':>7} {'written':>8} {'CODI':>6} {'zeroed':>7}  "
            f"{'best probe per hop':<20} {'lens diagonal':<16} counterfactual per hop")
    table = (f"{n} held-out problems each; chance 0.125 (8 nodes). Probe: best held-out accuracy of the value after "
             "each hop over every (layer, position); lens diagonal: thought j's top token is the node after hop j+1; "
             "counterfactual: patching, best thought cell.\n\n" + head + "\n" + "\n".join(rows))
    return viz.report(grids, out=out, names=labels, metric="accuracy",
                      lead_sections=[("Organisms of different depth", table)], extra_sections=details,
                      title="codi-lens: model organisms across depth")


def cmd_organism_compare(args: argparse.Namespace) -> int:
    import codi

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = args.names or codi.organisms.available()
    path = compare_organisms(names, args.out, n=args.n, n_pairs=args.pairs, n_permutations=args.permutations)
    print(f"wrote {path}")
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
    v = verbs.add_parser("compare", help="one report across organisms of different depth (accuracy, probes, lens, "
                                         "patching; hop-1 probe grids side by side)")
    v.add_argument("names", nargs="*", help="organisms (default: every shipped one)")
    v.add_argument("--out", default="runs/organisms-compare.html")
    v.add_argument("--n", type=int, default=500)
    v.add_argument("--pairs", type=int, default=200)
    v.add_argument("--permutations", type=int, default=20)
    v.add_argument("--threads", type=int, default=1)
    v.set_defaults(func=cmd_organism_compare)
