"""Attribution patching (AtP through the latent recurrence) + exact verification vs the full exact patching sweep.

    python benchmarks/bench_attribution.py                                   # smollm2-135m CODI, 4 pairs
    python benchmarks/bench_attribution.py --run codi/pretrained/smollm2-135m-arith --pairs 4

One process, every thread pool at `--threads` (1) for both sides, the same CODI model (merged), the same
changed-number pairs and the same cells (every layer: the fed-back thought 'input' and residual layers 0..n_layers,
x every latent position):
- exact: `interp.interventions.patch` (the batched engine, each pass resumed at the first thought it patches);
- AtP: `interp.interventions.attribute` with `verify_top` = the top 10% of cells by |estimate| patched exactly (and
  `--sample` random cells for the false-negative check, 0 by default: the timed work is AtP + top 10%).
Four rows, timed in wall and process CPU time, interleaved (AtP + verification, exact, AtP alone, floor) for
`--repeats` rounds so machine noise hits them alike: each cell of the table is the median [min-max] over the rounds,
and each speed-up the median [min-max] of the per-round ratios. The floor is what every AtP + verification on this
engine must run: the two baselines (clean and corrupt runs, which every patching method needs) and the exact patch
of the same verified cells, with no gradients at all; T_exact / T_floor bounds the verified speed-up whatever the
estimates cost (AtP's corrupt baseline is its gradient run, so AtP + verification = floor + keeping that run's
activations for autograd + the backward pass + the dot products).
Agreement of the estimates with the exact sweep over every cell is reported (Spearman, top-10 overlap,
false-negative rate).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch

HERE = Path(__file__).parent

from machine import describe, interleaved, load_range, pin_threads, pools, spread, write_result  # noqa: E402  (benchmarks/ is the script's folder)


def _floor(cm, clean, corrupt, layers, cells):
    """What every AtP + exact verification must run: both baselines and the exact patch of `cells`."""
    from interp.interventions.patch import open_pairs, patch_edits

    st, base_c = open_pairs(cm, "attribution", clean, corrupt, layers, "latents")
    return st.run(patch_edits(cells, st.columns, base_c), progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="codi/pretrained/smollm2-135m-arith", help="a CODI run folder")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--sample", type=int, default=0, help="random cells patched exactly for the FN check")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the four rows")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(HERE / "results" / "attribution.md"))
    args = ap.parse_args()
    import scipy.stats  # noqa: F401  (loaded before pinning: `agreement` runs in the timed AtP calls)

    from codi import data
    from codi.model import CODIModel
    from interp import interventions as P

    pin_threads(args.threads)

    cm = CODIModel.from_pretrained(args.run).merge().eval()
    clean, corrupt = P.changed_number_pairs(data.arithmetic(4 * args.pairs, steps=3, seed=args.seed),
                                            cm.tokenizer, seed=args.seed)
    clean, corrupt = clean[: args.pairs], corrupt[: args.pairs]
    layers = ["input"] + list(range(cm.n_layers + 1))
    cells = len(layers) * cm.config.num_latents
    top = math.ceil(0.1 * cells)
    kw = dict(layers=layers, positions="latents", progress=False)
    P.patch(cm, clean[:1], corrupt[:1], layers=[1], positions=["latent_0"], progress=False)  # warm up
    verified: list = []  # the cells the first AtP run verified: the floor patches the same ones

    def floor():
        if not verified:
            raise RuntimeError("the floor needs the cells an AtP run verified: time AtP first.")
        return _floor(cm, clean, corrupt, layers, verified)

    def atp():
        g = P.attribute(cm, clean, corrupt, verify_top=top, verify_sample=args.sample, **kw)
        verified[:] = verified or [(r["layer"], r["position"]) for r in g.config["verification"]["top"]]
        return g

    names = {"atp": f"AtP + exact top {top} cells (attribute)", "exact": "exact batched sweep (patch)",
             "alone": "AtP estimates alone (attribute, verify_top=0)",
             "floor": f"floor: baselines + exact patch of the same {top} cells, no gradients"}
    t = interleaved({"atp": atp, "exact": lambda: P.patch(cm, clean, corrupt, **kw),
                     "alone": lambda: P.attribute(cm, clean, corrupt, verify_top=0, **kw), "floor": floor},
                    args.repeats)
    g, exact = t["atp"][0].result, t["exact"][0].result
    same = all(bool((x.result.metrics["estimate"] == g.metrics["estimate"]).all()) for x in t["atp"] + t["alone"])
    a = P.agreement(g, exact)
    a10 = P.agreement(g, exact, top=top)
    v = g.config["verification"]
    lines = [
        "| method | cells | wall s | CPU s | wall speed-up | CPU speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("exact", "atp", "alone", "floor"):
        w = [x.wall_s for x in t[key]]
        c = [x.cpu_s for x in t[key]]
        rw = [e.wall_s / x.wall_s for e, x in zip(t["exact"], t[key])]
        rc = [e.cpu_s / x.cpu_s for e, x in zip(t["exact"], t[key])]
        lines.append(f"| {names[key]} | {cells} | {spread(w, '{:.1f}')} | {spread(c, '{:.1f}')} | "
                     f"{spread(rw, '{:.1f}x')} | {spread(rc, '{:.1f}x')} |")
    agree = (
        f"Agreement of the AtP estimates with the exact sweep over all {a['cells']} cells: Spearman "
        f"{a['spearman']:.3f} ({a['spearman_moved']:.3f} over the {a['cells_moved']} cells the counterfactual "
        f"moves), Pearson {a['pearson']:.3f}, top-10 overlap {a['top_overlap']:.2f}, false-negative "
        f"rate (top-10 cut-off) {a['false_negative_rate']:.3f}; top-{top} overlap {a10['top_overlap']:.2f}, "
        f"false-negative rate (top-{top} cut-off) {a10['false_negative_rate']:.3f}. The {top} verified cells: "
        f"largest exact effect {max(abs(r['exact']) for r in v['top']):.3g} logit-diff units; all "
        f"{2 * args.repeats} AtP runs gave identical estimates: {same}."
    )
    text = (
        f"# Attribution patching vs exact patching\n\nMachine: {describe()}, load average "
        f"{load_range([x for v in t.values() for x in v])} over the runs; torch {torch.__version__}, "
        f"thread pools {pools()} for both sides. Command: "
        f"`python benchmarks/bench_attribution.py {' '.join(os.sys.argv[1:])}`\n\n"
        f"Model: {args.run} (merged), {cm.n_layers} layers, {cm.config.num_latents} latents; {len(clean)} "
        "changed-number pairs from `codi.data.arithmetic(steps=3)`; cells: 'input' + residual layers "
        f"0..{cm.n_layers} x every latent = {cells}; metric: logit difference clean - corrupt answer. "
        f"{args.repeats} interleaved rounds (AtP + verification, exact, AtP alone, floor): times are the median "
        "[min-max] over the rounds, speed-ups the median [min-max] of the per-round ratios. Exact patching runs on "
        "the same engine in every row (each pass starting at the patched thought), so verifying 10% of the cells "
        "costs about 10% of the exact sweep's cell work, and every row runs the clean and the corrupt baseline "
        "(AtP's corrupt baseline is its gradient run). The floor row times exactly that shared part (baselines + "
        "exact patch of the verified cells, no gradients): its speed-up is the most any AtP + top-10% "
        "verification can reach here, however cheap the estimates; AtP + verification is the floor plus the "
        "gradient bookkeeping of its corrupt run, the backward pass and the dot products, and the estimates alone "
        "are what scale.\n\n"
        + "\n".join(lines) + "\n\n" + agree + "\n"
    )
    write_result(text, args.out)


if __name__ == "__main__":
    main()
