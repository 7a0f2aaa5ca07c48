"""codi-lens on a CUDA device gives what it gives on the CPU: the model organism pointer3 (its own weights, in the
repository) and a tiny-llama CODI model, run through every intervention, the curves, the cache and the probes, once
on the CPU and once on the GPU in float32; the GPU's default dtype (bfloat16) is run too and reported beside.

    python benchmarks/check_gpu.py                     # needs a CUDA device; writes benchmarks/results/gpu.md
    python benchmarks/check_gpu.py --pairs 4 --out /tmp/gpu.md

Checks (float32, GPU against CPU, each a max absolute difference against a tolerance relative to the largest CPU
value): AtP estimates and their exact verification, the exact patching sweep, ablation, steering with a readout,
the necessity and early-exit curves, the cached residuals, the AtP gradient through three fed-back thoughts (and its
first-order agreement with the exact effect on the GPU), and probes.sweep's logistic (nested C search and one C),
ridge and multiclass probes with their permutation p-values. Exits 1 if any check fails, 2 without a CUDA device.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "gpu.md"
NAMES = {"est": "attribute", "exact": "patch", "ablate": "ablate", "steer": "steer", "nec": "necessity",
         "ee": "early_exit", "cache": "cache"}


def _timed(fn, dev: str):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def organism_runs(dev: str, pairs: int, dtype: str | None = None) -> tuple[dict, dict]:
    """Every intervention, the curves and a cache of pointer3 on `dev` (`dtype` None: the device's default)."""
    import codi.organisms as organisms
    import interp
    from interp import patching as P
    from interp.interventions.curves import early_exit, necessity

    cm, make = organisms.load("pointer3", device=dev, dtype=dtype)
    cm.eval()
    clean, corrupt = organisms.pairs("pointer3", pairs, seed=0, step=1)
    probs = make(pairs, seed=1)
    torch.manual_seed(0)
    w = torch.randn(cm.d_model)
    runs = {
        "est": lambda: P.attribute(cm, clean, corrupt, verify_top=10, verify_sample=20, progress=False),
        "exact": lambda: P.patch(cm, clean, corrupt, progress=False),
        "ablate": lambda: P.ablate(cm, probs, positions="latents", layers="all", mode="mean", progress=False),
        "steer": lambda: P.steer(cm, probs, w, layers=[1, 2], positions="latents", alphas=[2.0], readout=(2, "eot"),
                                 progress=False)[2.0],
        "nec": lambda: necessity(cm, probs),
        "ee": lambda: early_exit(cm, probs),
    }
    out, secs = {}, {}
    for k, fn in runs.items():
        out[k], secs[k] = _timed(fn, dev)
    with tempfile.TemporaryDirectory() as d:
        _, secs["cache"] = _timed(lambda: interp.cache(cm, [p.question for p in probs], positions="all",
                                                       out=f"{d}/c", progress=False), dev)
        out["acts"] = interp.load_cache(f"{d}/c").array()
    return out, secs


def tiny_attribution(dev: str):
    """AtP through three fed-back thoughts of a tiny-llama CODI model: the same weights on every device (made on
    the CPU with a seed, saved, loaded on `dev` in float32)."""
    from codi import CODIConfig, CODIModel
    from interp import patching as P

    torch.manual_seed(0)
    cm = CODIModel.from_config(CODIConfig("tiny-llama", num_latents=3, lora_r=4))
    with torch.no_grad():
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    with tempfile.TemporaryDirectory() as d:
        cm.save_pretrained(d)
        cm = CODIModel.from_pretrained(d, device=dev, dtype="float32").eval()
    return P.attribute(cm, [{"question": "3 + 4 = ?", "answer": "7"}], [{"question": "3 + 5 = ?", "answer": "8"}],
                       layers=["input"], positions="latents", verify_top=3, progress=False)


def probe_inputs() -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3, 2, 32)).astype(np.float32)
    y = np.tile([0, 1], 60)
    X[:, 1, 0] += np.outer(y - 0.5, np.ones(32)) * 0.4
    yv = X[:, 1, 0, :4].sum(1) + rng.normal(size=120)
    yk = np.repeat(np.arange(3), 40)
    X[:, 2, 1, :3] += np.eye(3)[yk]
    return X, {"binary": y, "value": yv, "class": yk}, np.repeat(np.arange(60), 2)


class Checks:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, name: str, gpu, cpu, tol: float, floor: float = 1.0) -> None:
        """Pass when the NaN patterns agree and max |gpu - cpu| <= tol * max(max |cpu|, floor)."""
        a, b = np.asarray(gpu, np.float64), np.asarray(cpu, np.float64)
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
        m = np.isfinite(a) & np.isfinite(b)
        err = float(np.abs(a[m] - b[m]).max()) if m.any() else 0.0
        scale = float(np.abs(b[m]).max()) if m.any() else 0.0
        ok = same_nan and err <= tol * max(scale, floor)
        self.rows.append({"check": name, "ok": ok, "n": int(m.sum()), "max_abs_diff": err, "scale": scale,
                          "tol": tol * max(scale, floor)})
        print(json.dumps(self.rows[-1]), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=16, help="pointer3 pairs (and problems) per run")
    p.add_argument("--out", default=str(RESULTS), help="results markdown file")
    p.add_argument("--device", default="cuda", help="the device checked against the CPU ('cpu' tries the script)")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("check_gpu skipped: needs a CUDA device (torch.cuda.is_available() is False); run it where a GPU is "
              "lent.")
        return 2
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    import probes
    from basemodels.registry import check_dtype
    from interp import patching as P

    dev = args.device
    ref, t_cpu = organism_runs("cpu", args.pairs)
    gpu, t_gpu = organism_runs(dev, args.pairs, "float32")
    bf, t_bf = organism_runs(dev, args.pairs)
    c = Checks()
    c.add("AtP estimates (pointer3, every cell)", gpu["est"].metrics["estimate"], ref["est"].metrics["estimate"], 1e-3)
    c.add("AtP exact verification", gpu["est"].metrics["exact"], ref["est"].metrics["exact"], 1e-3)
    c.add("exact patching sweep: delta_logit_diff", gpu["exact"].metrics["delta_logit_diff"],
          ref["exact"].metrics["delta_logit_diff"], 1e-3)
    c.add("exact patching sweep: clean_accuracy", gpu["exact"].metrics["clean_accuracy"],
          ref["exact"].metrics["clean_accuracy"], 0)
    c.add("mean ablation: delta_logp", gpu["ablate"].metrics["delta_logp"], ref["ablate"].metrics["delta_logp"], 1e-3)
    c.add("steering: delta_readout", gpu["steer"].metrics["delta_readout"], ref["steer"].metrics["delta_readout"],
          1e-3)
    c.add("necessity curve: accuracy", gpu["nec"].values["accuracy"], ref["nec"].values["accuracy"], 0)
    c.add("necessity curve: answer_logp", gpu["nec"].values["answer_logp"], ref["nec"].values["answer_logp"], 1e-3)
    c.add("early-exit curve: answer_top1", gpu["ee"].values["answer_top1"], ref["ee"].values["answer_top1"], 0)
    c.add("cache: residuals at every layer and position", gpu["acts"], ref["acts"], 1e-3)
    g_gpu, g_cpu = tiny_attribution(dev), tiny_attribution("cpu")
    c.add("AtP gradient through 3 fed-back thoughts (tiny-llama)", g_gpu.metrics["estimate"],
          g_cpu.metrics["estimate"], 1e-3, floor=0)
    top = g_gpu.config["verification"]["top"]
    c.add("  on the GPU: estimate vs exact effect (first order)", [r["estimate"] for r in top],
          [r["exact"] for r in top], 0.1, floor=0)
    X, ys, grp = probe_inputs()
    base = dict(groups=grp, n_permutations=20, n_bootstrap=100, progress=False)
    for name, kw, metric in [("logreg, nested C search", dict(labels=ys["binary"], Cs=(1e-2, 1e-1, 1.0)), "auroc"),
                             ("logreg, one C", dict(labels=ys["binary"], Cs=(1e-1,)), "auroc"),
                             ("ridge", dict(labels=ys["value"], method="ridge"), "r2"),
                             ("multiclass", dict(labels=ys["class"], method="multiclass"), "accuracy")]:
        gc = probes.sweep(X, device="cpu", **base, **kw)
        gd = probes.sweep(X, device=dev, **base, **kw)
        c.add(f"probes.sweep {name}: {metric}", gd.metrics[metric], gc.metrics[metric], 2e-3)
        c.add(f"probes.sweep {name}: p_value", gd.metrics["p_value"], gc.metrics["p_value"], 0.06)

    a_cpu, a_bf = P.agreement(ref["est"], ref["exact"]), P.agreement(bf["est"], bf["exact"])
    span = ref["exact"].config["baseline"]["logit_diff_clean"] - ref["exact"].config["baseline"]["logit_diff_corrupt"]
    dtype = str(check_dtype(None, torch.device(dev))).removeprefix("torch.")
    md = ["# codi-lens on a GPU", "",
          f"Machine: {describe(dev)}; torch {torch.__version__}. Command: `python benchmarks/check_gpu.py "
          f"--pairs {args.pairs}`. pointer3 (the shipped organism, {args.pairs} changed-start pairs and "
          f"{args.pairs} problems) and a tiny-llama CODI model, run on the CPU and on the GPU in float32; a check "
          "passes when the NaN patterns agree and the largest absolute difference is within the tolerance "
          "(relative to the largest CPU value, at least 1, except the gradient rows).", "",
          "| check | cells / values | max abs difference | tolerance | pass |", "|---|---|---|---|---|"]
    md += [f"| {r['check']} | {r['n']} | {r['max_abs_diff']:.3g} | {r['tol']:.3g} | {'yes' if r['ok'] else 'NO'} |"
           for r in c.rows]
    d_bf = np.nanmax(np.abs(bf["exact"].metrics["delta_logit_diff"] - ref["exact"].metrics["delta_logit_diff"]))
    md += ["", f"The GPU's default dtype ({dtype}, `check_dtype`), against the CPU in float32: exact patching effects "
           f"within {d_bf:.3g} logit-difference units (clean - corrupt span {span:.2f}); necessity accuracy "
           f"{bf['nec'].values['accuracy'].tolist()} vs {ref['nec'].values['accuracy'].tolist()}; early-exit "
           f"top-1 {bf['ee'].values['answer_top1'].tolist()} vs {ref['ee'].values['answer_top1'].tolist()}; cached "
           f"residuals within {np.abs(bf['acts'] - ref['acts']).max():.3g} (largest |value| "
           f"{np.abs(ref['acts']).max():.3g}); AtP against exact patching: Spearman over the moved cells "
           f"{a_bf['spearman_moved']:.3f} ({a_cpu['spearman_moved']:.3f} on the CPU), top-10 overlap "
           f"{a_bf['top_overlap']:.2f} ({a_cpu['top_overlap']:.2f}).", "",
           "Seconds per call (pointer3; first calls on the GPU include its warm-up): "
           + "; ".join(f"{NAMES[k]} CPU {t_cpu[k]:.2f}, GPU float32 {t_gpu[k]:.2f}, GPU default {t_bf[k]:.2f}"
                       for k in t_cpu)
           + ". Not a benchmark: a model this small is latency-bound on a GPU.", ""]
    failed = [r["check"] for r in c.rows if not r["ok"]]
    md.append(f"Failed: {', '.join(failed)}" if failed else f"All {len(c.rows)} checks pass.")
    Path(args.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
