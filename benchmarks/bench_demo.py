"""Wall and CPU time of `codi-lens demo` (--quick and the default size), each in a fresh subprocess, with the
demo's own stage times (`summary.json` -> stage_seconds), and the key numbers of the default run (the table in
the README's demo section is copied from here).

    python benchmarks/bench_demo.py                      # --quick and the default size, --threads 1
    python benchmarks/bench_demo.py --sizes quick        # the CI size only

CPU time is the children's user + system time (resource.getrusage); the load average is read before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, loadavg

HERE = Path(__file__).parent
ROOT = HERE.parent


def run(size: str, threads: int, folder: Path) -> dict:
    """One demo run in a subprocess: wall, CPU, load before/after, the demo's stage seconds."""
    out = folder / size
    cmd = [sys.executable, "-m", "app", "demo", "--out", str(out), "--threads", str(threads)]
    cmd += ["--quick"] if size == "quick" else []
    load0, r0, t0 = loadavg(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall, r1, load1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN), loadavg()
    if proc.returncode != 0:
        raise SystemExit(f"demo ({size}) failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"size": size, "wall": wall, "cpu": cpu, "load": (load0, load1), "stages": summary.get("stage_seconds", {}),
            "command": " ".join(["codi-lens", *cmd[3:]]), "summary": summary}


def _ci(d: dict, key: str = "auroc") -> str:
    return f"{d[key]:.3f} [{d[key + '_lo']:.3f}, {d[key + '_hi']:.3f}]"


def _cell(d: dict) -> str:
    return f"layer {d['layer']}, `{d['position']}`"


def _gain(d: dict) -> str:
    return f"text-only {_ci(d, 'text_auroc')} -> gain {d['gain']:+.3f} [{d['gain_lo']:+.3f}, {d['gain_hi']:+.3f}]"


def _behaviour(b: dict) -> str:
    c = b["counts"]
    text = f"{c['false']} false / {c['true']} true / {c['no_answer']} no number"
    best = b.get("best") or {}
    kind, cell = next(iter(best.items()), (None, None))          # the CODI model: "latent"; a plain one: "token"
    return text + (f"; best {kind} cell {_ci(cell)} ({_cell(cell)}), {_gain(cell)}" if cell else
                   "; no probe (one class)")


def _probe_rows(s: dict) -> list[tuple[str, str]]:
    rows = []
    for key, what in (("deception", "deception-arith, instruction before the question"),
                      ("instructed_facts", "instructed-facts"), ("roleplaying", "roleplaying")):
        d = s.get(key)
        if d is None:
            continue
        for part in ("best_latent", "best_response"):
            rows.append((f"{what}: {part.replace('_', ' ')} AUROC", f"{_ci(d[part])} ({_cell(d[part])}), "
                         f"p_FWER {d[part]['p_corrected']:.3f}; {_gain(d[part])}"))
        tb = d.get("text_baseline") or {}
        if tb:
            rows.append((f"{what}: `label_in_text`", f"fires at {len(tb['positions'])} of {tb['n_positions']} "
                         f"positions" if tb.get("fires") else "does not fire"))
    if "deception_control" in s:
        rows.append(("deception control (label only in the response): best latent AUROC",
                     _ci(s["deception_control"]["best_latent"])))
    return rows


def _study_rows(s: dict) -> list[tuple[str, str]]:
    rows = [(f"behaviour labels, {kind} model, instruction `{instruction}`", _behaviour(b))
            for kind, runs in s.get("behaviour", {}).items() if isinstance(runs, dict)
            for instruction, b in runs.items() if instruction in ("lie", "none")]
    rows += [(f"behaviour labels, {kind} model: what the lying instruction changed",
              f"stated number changed on {e['changed']} of {e['n']} questions; {e['true_to_false']} of "
              f"{e['true_without']} true answers became false, {e['false_to_true']} false became true")
             for kind, runs in s.get("behaviour", {}).items() if isinstance(runs, dict)
             for e in [runs.get("instruction_effect")] if e]
    for t in s.get("transfer", []):
        c = t["cells"]["train_best_latent"]
        rows.append((f"transfer {t['train']} -> {t['test']} ({_cell(c)}, picked on the training set)",
                     f"AUROC {_ci(c)}; at 1% FPR on {t['n_control']} honest control samples: recall "
                     f"{c['recall_at_1pct_fpr']:.2f}, FPR on the test's honest samples "
                     f"{c['test_fpr_at_threshold']:.2f}"))
    rows += [(f"`{j}`: best latent R^2 (ridge)", f"{v['best_latent']['r2']:.3f} ({_cell(v['best_latent'])})")
             for j, v in s.get("values", {}).items() if "r2" in v.get("best_latent", {})]
    if "ablation" in s:
        rows.append(("zero-ablating one thought: change of answer log-prob",
                     ", ".join(f"{k} {v:+.3f}" for k, v in s["ablation"]["zero"]["delta_logp"].items())))
    return rows


def key_numbers(s: dict) -> list[tuple[str, str]]:
    """The rows of the README's demo table, from a default run's summary.json."""
    acc = s["accuracy"]
    rows = [(f"held-out accuracy: CODI / no reasoning / written reasoning (n = {acc['codi']['n']})",
             " / ".join(f"{100 * acc[k]['accuracy']:.1f}%" for k in ("codi", "no_cot", "cot")))]
    return rows + _probe_rows(s) + _study_rows(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="quick,default", help="comma-separated: quick, default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "demo.md"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        runs = [run(size, a.threads, Path(tmp)) for size in a.sizes.split(",")]
    md = ["## `codi-lens demo`: wall and CPU time", "",
          f"Machine: {describe()}; each size in a fresh subprocess, one after the other, `--threads {a.threads}`.", "",
          "| size | command | wall min | CPU min | load before-after |", "|---|---|---:|---:|---|"]
    md += [f"| {r['size']} | `{r['command']}` | {r['wall'] / 60:.1f} | {r['cpu'] / 60:.1f} | "
           f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |" for r in runs]
    for r in runs:
        stages = ", ".join(f"{k} {v / 60:.1f} min" for k, v in r["stages"].items())
        md += ["", f"Stages of the {r['size']} run (the demo's own clock): {stages}."]
    for r in runs:
        if r["size"] == "default":
            md += ["", "Key numbers of the default run (95% CIs in brackets; p_FWER: max-T over the cells):", "",
                   "| what | result |", "|---|---|"]
            md += [f"| {k} | {v} |" for k, v in key_numbers(r["summary"])]
    text = "\n".join(md) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
