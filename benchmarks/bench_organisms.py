"""Model organisms: held-out accuracy re-measured from the shipped weights, with the training wall time recorded when
each was trained here, and the study numbers (probes, logit lens, patching) of each.

    python benchmarks/bench_organisms.py                  # every shipped organism, 500 held-out problems
    python benchmarks/bench_organisms.py --n 200 --pairs 50 --permutations 10 --out runs/organisms.md

Writes benchmarks/results/organisms.md. Training wall time comes from each organism's `organism.json` (measured by
`codi.organisms.train.train_organism` on this 2-core CPU, 1 torch thread); everything else is measured by this run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import codi
from app.organism_study import study
from codi.organisms.train import accuracy_table

RESULTS = Path(__file__).parent / "results" / "organisms.md"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--permutations", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS), help="results markdown file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from machine import describe

    acc_rows, study_lines = [], []
    for name in codi.organisms.available():
        cm, _ = codi.organisms.load(name)
        task = codi.organisms.task_of(name)
        meta = json.loads((codi.organisms.folder(name) / "organism.json").read_text())
        t0 = time.time()
        a = accuracy_table(cm, task, n=args.n)
        eval_s = time.time() - t0
        first = " / ".join(f"{x:.3f}" for x in a["first_j"])
        acc_rows.append(f"| {name} | {task.depth} | {cm.config.num_latents} | {a['chance']:.3f} | {a['direct']:.3f} | "
                        f"{a['written']:.3f} | {a['codi']:.3f} | {a['codi_zero']:.3f} | {a['codi_mean']:.3f} | "
                        f"{a['codi_random']:.3f} | {a['codi_swap']:.3f} | {first} | {meta['wall']['base_s']:.0f} + "
                        f"{meta['wall']['codi_s']:.0f} | {eval_s:.1f} |")
        t0 = time.time()
        res = study(cm, task, n=args.n, n_pairs=args.pairs, n_permutations=args.permutations, name=name)
        study_lines += [res.markdown(), f"_(study wall time {time.time() - t0:.0f} s: {res.wall_s})_", ""]
        print(acc_rows[-1], flush=True)
    md = "\n".join([
        "# Model organisms: CODI models whose thoughts do the work", "",
        f"- machine: {describe()}; load average {os.getloadavg()[0]:.1f} at the end",
        f"- {args.n} held-out problems per organism (hash split: never trained on), greedy decoding; "
        f"{args.pairs} patching pairs per hop; {args.permutations} permutations per probe cell", "",
        "| organism | hops | thoughts | chance | direct | written | CODI | zeroed | mean | random | swapped | "
        "first j = 0..k thoughts | training wall s (base + CODI) | eval wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
        *acc_rows, "",
        "Direct = the base answers right after the question; written = the base writes its steps; CODI = the "
        "organism's latent run; zeroed / mean / random (same norm) / swapped (another problem's) = every thought "
        "replaced; first j = only the first j thoughts run.", "",
        *study_lines])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
