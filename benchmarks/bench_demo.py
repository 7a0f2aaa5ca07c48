"""Wall and CPU time of `codi-lens demo` (--quick and the default size), each in a fresh subprocess, with the
demo's own stage times (`summary.json` -> stage_seconds): the source of the README's demo timings.

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
            "command": " ".join(["codi-lens", *cmd[3:]])}


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
    text = "\n".join(md) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
