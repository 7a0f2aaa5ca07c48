"""Run every benchmark script in benchmarks/ and rewrite benchmarks/RESULTS.md from benchmarks/results/*.md.

    python benchmarks/run_all.py                       # every bench_*/check_* script at its default size
    python benchmarks/run_all.py --device cuda         # passed to the scripts that take --device
    python benchmarks/run_all.py --quick               # tiny sizes, outputs in runs/bench-quick/ (smoke test)
    python benchmarks/run_all.py --only probes,cache   # a subset (words matched in script names; commas or spaces)
    python benchmarks/run_all.py --collect             # no runs: just rebuild RESULTS.md from results/*.md

Scripts are discovered (bench_*.py, check_*.py; study_*.py and the scripts marked slow only with
--include-slow). Each one runs in its own process, one after another (never in parallel: the timings are
ratios measured side by side inside each script, and two scripts at once would disturb each other); each
writes its table to benchmarks/results/<topic>.md. RESULTS.md then gets the machine (CPU model, cores, RAM,
GPU), the library versions, the date, a status line per script run, and every results table. A script that
fails is reported with its exit code and the tail of its output; the others still run.

--quick gives each known script tiny settings and sends its table to runs/bench-quick/results/ (and RESULTS.md
to runs/bench-quick/RESULTS.md), so quick numbers never overwrite the real ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SLOW = {"bench_codi_accuracy", "study_patching"}  # train a model / need a trained run: minutes to hours
# Tiny settings per known script for --quick ("{tmp}" is the quick output folder). None: skipped in --quick.
QUICK = {
    "bench_cache": ["--n-prompts", "4", "--tokens", "16", "--repeats", "1", "--threads", "1", "--no-memory"],
    "bench_codi_cache": ["--runs", "tiny-llama:1,4", "--repeats", "1"],
    "bench_codi_step": ["--model", "tiny-llama", "--steps", "1", "--batch-size", "2", "--lora-r", "4"],
    "bench_patching": ["--models", "tiny-llama", "--pairs", "2"],
    "bench_attribution": None,  # needs the shipped smollm2 CODI run and ~2 min
    "bench_pass_cost": ["--model", "tiny-llama", "--rows", "2", "8", "--repeats", "1"],
    "bench_demo": None,  # runs the whole demo (quick and default size): minutes
    "bench_probes": ["--parts", "d3072", "--samples", "48", "--layers", "2", "--positions", "2", "--d", "32",
                     "--permutations", "4", "--sk-cells", "1", "--sk-perms", "1", "--threads", "1", "--repeats", "1",
                     "--no-profile"],
    "check_report_browser": ["--png", "", "--out-dir", "{tmp}/report_browser", "--no-results"],
    "bench_organisms": ["--n", "60", "--pairs", "10", "--permutations", "0"],
    "bench_codi_accuracy": None,  # writes benchmarks/results directly and trains: never in --quick
    "study_patching": None,
    "check_gpu": None,  # needs a CUDA device (exits 2 without one)
}
VERSIONS = [
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "transformer-lens",
    "nnsight",
    "scikit-learn",
    "numpy",
    "plotly",
    "safetensors",
    "codi-lens",
]


def discover(include_slow: bool) -> list[Path]:
    """Benchmark scripts in run order: bench_* then check_* (then study_* with include_slow)."""
    kinds = ("bench_", "check_", "study_") if include_slow else ("bench_", "check_")
    found = [p for p in sorted(HERE.glob("*.py")) if p.name.startswith(kinds)]
    return [p for p in found if include_slow or p.stem not in SLOW]


def select(scripts: list[Path], words: list[str]) -> list[Path]:
    """The scripts named by `words`: a word equal to a script's topic (its name without bench_/check_/study_) picks
    that script only ("cache" is bench_cache, not bench_codi_cache); any other word picks every script whose name
    contains it."""
    topic = {p: re.sub(r"^(bench|check|study)_", "", p.stem) for p in scripts}
    chosen = set()
    for w in words:
        exact = [p for p in scripts if topic[p] == w]
        chosen.update(exact or [p for p in scripts if w in p.stem])
    return [p for p in scripts if p in chosen]


def flags_of(script: Path) -> set[str]:
    """The --options a script's argparse declares (read from its source, so nothing is imported)."""
    return set(re.findall(r"""add_argument\(\s*["'](--[\w-]+)""", script.read_text()))


def command(
    script: Path, quick: bool, tmp: Path, device: str | None, threads: str | None, extra: list[str]
) -> list[str] | None:
    """The argv for one script, or None when it is skipped in this mode."""
    flags = flags_of(script)
    args: list[str] = []
    if quick:
        if script.stem in QUICK and QUICK[script.stem] is None:
            return None
        args += [a.replace("{tmp}", str(tmp)) for a in QUICK.get(script.stem, [])]
        if "--out" in flags and script.stem.startswith("bench_"):
            args += ["--out", str(tmp / "results" / f"{script.stem.removeprefix('bench_')}.md")]
    if device and "--device" in flags:
        args += ["--device", device]
    if threads and "--threads" in flags and "--threads" not in args:
        args += ["--threads", str(threads)]
    return [sys.executable, str(script), *args, *extra]


def machine() -> list[str]:
    from machine import cpu_name

    cpu = cpu_name()
    ram = "?"
    try:
        kb = int(
            next(
                x.split()[1]
                for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal")
            )
        )
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {ram}; GPU: {gpu}",
        f"- OS: {platform.platform()}; load average at start {load:.1f} (other jobs make CPU timings noisy; "
        f"each table's ratios are measured side by side in one process)",
    ]


def versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for name in VERSIONS:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return "- versions: " + ", ".join(parts)


def demote(md: str) -> str:
    """Headings one level down, so each results file sits under RESULTS.md's own title."""
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", md, flags=re.MULTILINE)


def written(f: Path) -> str:
    """When a result file was written: its last commit's date if the file is unchanged since (a fresh clone gives
    every file the checkout time), else its modification time."""
    root = Path(__file__).resolve().parent.parent
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(f)], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
        if not dirty:
            out = subprocess.run(["git", "log", "-1", "--format=%cd", "--date=format:%Y-%m-%d %H:%M", "--", str(f)],
                                 cwd=root, capture_output=True, text=True, check=True).stdout.strip()
            if out:
                return out
    except (OSError, subprocess.CalledProcessError):
        pass
    return dt.datetime.fromtimestamp(f.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def results_md(results_dir: Path, status: list[str], header: list[str]) -> str:
    files = sorted(results_dir.glob("*.md"))
    lines = ["# Benchmark results", "", *header, ""]
    if status:
        lines += [
            "## This run",
            "",
            "| script | status | seconds | command |",
            "|---|---|---:|---|",
            *status,
            "",
        ]
    for f in files:
        when = written(f)
        lines += [
            f"<!-- {f.name}, written {when} -->",
            demote(f.read_text().strip()),
            "",
            f"_(from `benchmarks/results/{f.name}`, written {when})_",
            "",
        ]
    if not files:
        lines.append(f"(no tables in {results_dir})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="tiny settings; outputs under --quick-dir, not results/"
    )
    ap.add_argument("--quick-dir", default=str(ROOT / "runs" / "bench-quick"))
    ap.add_argument("--device", help="passed to scripts that take --device (e.g. cuda)")
    ap.add_argument("--threads", help="passed to scripts that take --threads (bench_probes and bench_cache take a "
                    "comma list, e.g. 1,2; their default is 1 and all cores)")
    ap.add_argument("--only", nargs="+", help="run only scripts whose name contains one of these words (probes,cache "
                    "or probes cache)")
    ap.add_argument("--include-slow", action="store_true", help=f"also {sorted(SLOW)} and study_* scripts")
    ap.add_argument(
        "--collect", action="store_true", help="run nothing; rebuild RESULTS.md from results/*.md"
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per script before it is stopped")
    ap.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="arguments appended to every script"
    )
    args = ap.parse_args(argv)

    tmp = Path(args.quick_dir)
    results_dir = tmp / "results" if args.quick else HERE / "results"
    out = tmp / "RESULTS.md" if args.quick else HERE / "RESULTS.md"
    results_dir.mkdir(parents=True, exist_ok=True)
    scripts = [] if args.collect else discover(args.include_slow)
    if args.only:
        scripts = select(scripts, [w for arg in args.only for w in arg.split(",") if w])
        if not scripts:
            raise SystemExit(f"--only {args.only} matches no script in {HERE}")
    header = [
        f"Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
        + (" (--quick: tiny sizes, smoke test)" if args.quick else ""),
        "",
        *machine(),
        versions(),
    ]
    status, failed = [], 0
    for i, script in enumerate(scripts, start=1):
        cmd = command(script, args.quick, tmp, args.device, args.threads, args.extra)
        shown = " ".join(Path(c).name if c == sys.executable else c for c in (cmd or [script.name]))
        if cmd is None:
            print(f"[{i}/{len(scripts)}] {script.name}: skipped in --quick", flush=True)
            status.append(f"| {script.name} | skipped (--quick) | - | |")
            continue
        print(f"[{i}/{len(scripts)}] {shown}", flush=True)
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
            rc, text = r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired as err:
            rc, text = "timeout", f"{err.stdout or ''}{err.stderr or ''}"
        sec = time.perf_counter() - t0
        ok = rc == 0 or (rc == 2 and "skipped" in str(text))  # check_* scripts exit 2 when no browser exists
        failed += not ok
        state = (
            "ok"
            if rc == 0
            else ("skipped: " + str(text).strip().splitlines()[-1][:80] if ok else f"FAILED ({rc})")
        )
        status.append(f"| {script.name} | {state} | {sec:.0f} | `{shown}` |")
        print(f"    {state} in {sec:.0f} s", flush=True)
        if not ok:
            tail = str(text).strip().splitlines()[-15:]
            print("    " + "\n    ".join(tail), flush=True)
    out.write_text(results_md(results_dir, status, header))
    print(f"wrote {out} ({len(list(results_dir.glob('*.md')))} tables); {failed} script(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
