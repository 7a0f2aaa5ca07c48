"""Ablation and patching study on a trained CODI run: which continuous thoughts does the answer use?

    python benchmarks/study_patching.py --run runs/codi-smol                 # smollm2-135m CODI (issue 3's
    run)
    python benchmarks/study_patching.py --run runs/codi-smol --n 128 --pairs 32 --layers all --threads 2

1. Per-latent ablation: each thought removed at the input (the fed-back embedding) by zero / mean / resample,
   and all thoughts at once: teacher-forced greedy accuracy (checked against real generation) and answer
   log-prob.
2. Layer x latent mean-ablation grid (which layer of which thought matters).
3. Activation patching on changed-number pairs (same problem, starting number changed, same token count):
   recovered fraction of the logit difference for every (layer, position) cell over <bot>, the thoughts, <eot>
   (and the question tokens with --with-question, costly on CPU).
Writes grids (grids.ResultGrid folders) and heatmaps under --out-dir and the summary to --md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent


def _problems(args):
    from codi import data

    held = Path(str(args.run).rstrip("/") + "-heldout.jsonl")
    if args.data or held.exists():
        probs = data.load(args.data or held)
        src = str(args.data or held)
    else:
        probs, src = (
            data.arithmetic(args.n, steps=args.steps, seed=args.seed),
            f"codi.data.arithmetic(seed={args.seed})",
        )
    return probs[: args.n], src


def _md_grid(g, metric: str, layers=None, digits: int = 2) -> str:
    layers = layers or g.layers
    head = "| layer | " + " | ".join(g.positions) + " |\n|" + "---|" * (len(g.positions) + 1) + "\n"
    rows = []
    for layer in layers:
        vals = g.sel(metric, layer=layer)
        name = "input" if layer == -1 else str(layer)
        rows.append(
            f"| {name} | " + " | ".join("" if not np.isfinite(v) else f"{v:.{digits}f}" for v in vals) + " |"
        )
    return head + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="/work/main/runs/codi-smol", help="CODI run folder")
    ap.add_argument("--data", help="problems file (default: RUN-heldout.jsonl if present, else generated)")
    ap.add_argument("--n", type=int, default=64, help="problems for the ablations")
    ap.add_argument("--pairs", type=int, default=12, help="changed-number pairs for patching")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", default="every3", help="layers of the grids: 'all' or 'everyK'")
    ap.add_argument(
        "--with-question", action="store_true", help="also patch every question token (slow on CPU)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default="runs/patching-study")
    ap.add_argument("--md", default=str(HERE / "results" / "patching_study.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import viz
    from codi.model import CODIModel
    from interp import interventions as P

    if not (Path(args.run) / "codi_config.json").exists():
        raise SystemExit(
            f"{args.run} is not a CODI run folder (no codi_config.json); train one first "
            f"(codi-lens train ... --out {args.run}) or pass --run."
        )
    t0 = time.time()
    cm = CODIModel.from_pretrained(args.run).eval()
    model = cm.merge().eval()
    probs, src = _problems(args)
    n = model.n_layers
    layers = ["input"] + (
        list(range(n + 1))
        if args.layers == "all"
        else sorted(set(range(0, n + 1, int(args.layers.removeprefix("every")))) | {n})
    )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = [
        f"# Ablation and patching study: {args.run}\n",
        f"Base {model.base_name} ({n} layers, d={model.d_model}), {model.config.num_latents} latents; "
        f"problems: "
        f"{src}, n={len(probs)}; CPU, torch threads {torch.get_num_threads()}. Command: "
        f"`python benchmarks/study_patching.py {' '.join(os.sys.argv[1:])}`\n",
    ]

    # 0. teacher-forced accuracy vs real greedy generation
    gen = model.generate([p.question for p in probs], max_new_tokens=16)
    gen_ok = np.array([a == p.answer.strip() for a, p in zip(gen.answers, probs)])

    # 1. per-latent ablation at the input
    rows = []
    for mode in ("zero", "mean", "resample"):
        g = P.ablate(model, probs, positions="latents", layers=["input"], mode=mode, progress=False)
        g.save(out / f"ablate-input-{mode}")
        t = P.ablate(
            model, probs, positions="latents", layers=["input"], mode=mode, together=True, progress=False
        )
        rows.append((mode, g, t))
    base = rows[0][1].config["baseline"]
    tf_ok = np.array(rows[0][1].config["baseline"]["correct"], dtype=bool)
    md.append("## 1. Removing one continuous thought (at the input)\n")
    md.append(
        f"Unablated: teacher-forced greedy accuracy {base['answer_accuracy']:.3f} (real greedy generation: "
        f"{gen_ok.mean():.3f}; the two agree on {np.mean(gen_ok == tf_ok):.1%} of problems), "
        f"answer log-prob {base['answer_logp']:.3f}.\n"
    )
    labels = rows[0][1].positions
    md.append("| ablation | " + " | ".join(labels) + " | all thoughts |\n|" + "---|" * (len(labels) + 2))
    for mode, g, t in rows:
        acc = g.sel("answer_accuracy", layer=-1)
        md.append(
            f"| {mode}: accuracy | "
            + " | ".join(f"{v:.3f}" for v in acc)
            + f" | {t.metrics['answer_accuracy'][0, 0]:.3f} |"
        )
        lp = g.sel("delta_logp", layer=-1)
        md.append(
            f"| {mode}: change of answer log-prob | "
            + " | ".join(f"{v:+.2f}" for v in lp)
            + f" | {t.metrics['delta_logp'][0, 0]:+.2f} |"
        )

    # 2. layer x latent mean ablation
    g = P.ablate(model, probs, positions="latents", layers=layers, mode="mean", progress=True)
    g.save(out / "ablate-layers-mean")
    viz.heatmap(g, metric="delta_accuracy", chance=0.0, title="mean ablation: change of accuracy").write_html(
        out / "ablate-layers-mean.html"
    )
    md.append("\n## 2. Mean-ablating one thought at one layer: change of accuracy\n")
    md.append(_md_grid(g, "delta_accuracy"))

    # 3. patching on changed-number pairs
    clean, corrupt = P.changed_number_pairs(probs, model.tokenizer, seed=args.seed)
    clean, corrupt = clean[: args.pairs], corrupt[: args.pairs]
    positions = "all" if args.with_question else ["bot"] + labels + ["eot"]
    h = P.patch(model, clean, corrupt, layers=layers, positions=positions, progress=True)
    h.save(out / "patch-changed-number")
    viz.heatmap(
        h, metric="recovered", chance=0.0, title="patching clean -> changed number: recovered"
    ).write_html(out / "patch-changed-number.html")
    b = h.config["baseline"]
    md.append(f"\n## 3. Activation patching, changed-number pairs (n={len(clean)})\n")
    md.append(
        f"Logit difference (clean answer token - corrupt answer token, first differing answer token): "
        f"clean run {b['logit_diff_clean']:.2f}, corrupt run {b['logit_diff_corrupt']:.2f}. Cells: share "
        f"of that gap recovered by writing the clean activation at the cell (1 = fully clean).\n"
    )
    md.append(_md_grid(h, "recovered"))
    best = h.table().sort_values("recovered", ascending=False).head(8)
    md.append(
        "\nStrongest cells: "
        + ", ".join(
            f"layer {'input' if r.layer == -1 else r.layer} {r.position} ({r.recovered:.2f})"
            for r in best.itertuples()
        )
    )
    md.append(
        f"\nGrids: `{out}/*` (grids.ResultGrid.load), heatmaps `{out}/*.html`. Wall time "
        f"{time.time() - t0:.0f} s.\n"
    )
    Path(args.md).parent.mkdir(parents=True, exist_ok=True)
    Path(args.md).write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
