"""Open a codi-lens HTML report in headless Chromium: no console errors, every figure and heatmap drawn,
hostile text shown as text (not run), a screenshot saved. Also checks the checker: a page with a deliberate
error must fail.

    python benchmarks/check_report_browser.py            # synthetic grids, screenshot -> docs/report.png
    python benchmarks/check_report_browser.py --probe runs/probe-a runs/probe-b --png /tmp/report.png

Needs Debian's `chromium` package (`apt-get install -y chromium`); exits 2 with that message when it is
missing. Prints a markdown table and writes it to benchmarks/results/report_browser.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# If the page ran this text as HTML, it would call console.error: the error catcher would report it.
INJECTED = "INJECTED-BY-DATA"
HOSTILE = (
    f"<script>console.error('{INJECTED}')</script><img src=x onerror=\"console.error('{INJECTED}')\">"
    "</script> & done"
)


def _synthetic_inputs():
    sys.path.insert(0, str(ROOT / "tests" / "viz"))
    from viz_synthetic import make_grid

    import viz

    small = make_grid(n_layers=4, model="tiny-llama", planted=False)  # only the sweep's own check findings
    big = make_grid(n_layers=8, model="bigger-model", seed=1, planted=False)
    small.config["sample_text"] = HOSTILE
    lens = viz.LensTable.from_dict(
        {
            (layer, f"latent_{j}"): [
                (f" {(j + 1) * 6 if layer > 4 else j + layer}", 0.1 + 0.1 * layer),
                ("<s>", 0.05),
            ]
            for layer in range(9)
            for j in range(3)
        },
        meta={"lens": "logit lens (synthetic example)", "question": HOSTILE},
    )
    return [small, big], ["tiny-llama", "bigger-model"], lens


def _control_detects_errors(tmp: Path) -> bool:
    """The negative control: a page that throws and calls console.error must be reported as failing."""
    from viz.browser import render

    bad = tmp / "bad.html"
    bad.write_text(
        "<html><head></head><body><script>console.error('control');undefinedFunction();</script>"
        "</body></html>"
    )
    errors = render(bad, budget_ms=2000).errors
    return any("control" in e for e in errors) and any("undefinedFunction" in e for e in errors)


def run(
    probe_dirs: list[str] | None = None,
    png: str | None = "docs/report.png",
    out_dir: str | None = None,
    window: tuple[int, int] = (1400, 1800),
) -> dict:
    """Write a report, render it headless, return the measured checks (see `ok`)."""
    import probes
    import viz
    from viz.browser import find_browser, render

    if find_browser() is None:
        raise RuntimeError(viz.browser.no_browser_message())
    tmp = Path(out_dir or tempfile.mkdtemp(prefix="codi-lens-report-check-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if probe_dirs:
        grids, names, lens = [probes.ProbeGrid.load(d) for d in probe_dirs], None, None
    else:
        grids, names, lens = _synthetic_inputs()
    t0 = time.perf_counter()
    html = viz.report(
        grids,
        out=tmp / "report.html",
        title="codi-lens report: probes on a planted signal" if not probe_dirs else "codi-lens report",
        names=names,
        lens=lens,
        extra_sections=[("Notes", f"Hostile text from the data, shown as text: {HOSTILE}")],
    )
    t_write = time.perf_counter() - t0
    doc = html.read_text(encoding="utf-8")
    n_figures = doc.count('data-figure="figure-')
    blocks = re.findall(
        r'<script type="application/json" data-figure="[^"]+">(.*?)</script>', doc, flags=re.S
    )
    n_heatmaps = sum(t.get("type") == "heatmap" for b in blocks for t in json.loads(b)["data"])
    t0 = time.perf_counter()
    shot = ROOT / png if png and not Path(png).is_absolute() else (Path(png) if png else None)
    r = render(html, png=shot, window=window)
    t_render = time.perf_counter() - t0
    drawn = len(re.findall(r'<div id="figure-\d+" class="[^"]*js-plotly-plot', r.dom))
    result = {
        "report_mb": html.stat().st_size / 2**20,
        "write_s": t_write,
        "render_s": t_render,
        "figures": n_figures,
        "figures_drawn": drawn,
        "heatmaps": n_heatmaps,
        "heatmaps_drawn": r.dom.count('class="hm"'),
        "main_svg": r.dom.count('class="main-svg"'),
        "console_errors": r.errors,
        "injected_ran": INJECTED in " ".join(r.errors + r.log),
        "hostile_shown_as_text": (not probe_dirs) and "&lt;script&gt;console.error(" in r.dom,
        "control_detected": _control_detects_errors(tmp),
        "png": str(shot) if shot else None,
        "html": str(html),
    }
    result["ok"] = (
        not r.errors
        and drawn == n_figures > 0
        and result["heatmaps_drawn"] >= n_heatmaps > 0
        and not result["injected_ran"]
        and result["control_detected"]
        and (result["hostile_shown_as_text"] or bool(probe_dirs))
    )
    return result


def _short(path: str | None) -> str:
    if not path:
        return "-"
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def table(r: dict, browser: str) -> str:
    rows = [
        ("browser", browser),
        ("report size", f"{r['report_mb']:.1f} MB (plotly.js inline)"),
        ("write report", f"{r['write_s']:.2f} s"),
        ("headless render + screenshot", f"{r['render_s']:.1f} s"),
        ("figures drawn / in page", f"{r['figures_drawn']} / {r['figures']}"),
        ("heatmaps drawn / in page", f"{r['heatmaps_drawn']} / {r['heatmaps']}"),
        ("console errors", str(len(r["console_errors"]))),
        ("hostile text ran as code", "yes (FAIL)" if r["injected_ran"] else "no"),
        ("hostile text shown as text", "yes" if r["hostile_shown_as_text"] else "n/a or no"),
        ("checker catches a deliberate error", "yes" if r["control_detected"] else "no (FAIL)"),
        ("screenshot", _short(r["png"])),
        ("verdict", "PASS" if r["ok"] else "FAIL"),
    ]
    return "| check | result |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe", nargs="+", help="ProbeGrid folders (default: two synthetic grids)")
    ap.add_argument("--png", default="docs/report.png", help="screenshot path ('' for none)")
    ap.add_argument("--out-dir", help="where the report is written (default: a temp folder)")
    ap.add_argument(
        "--no-results", action="store_true", help="do not write benchmarks/results/report_browser.md"
    )
    args = ap.parse_args(argv)
    from viz.browser import find_browser

    browser = find_browser()
    if browser is None:
        from viz.browser import no_browser_message

        print(f"skipped: {no_browser_message()}")
        return 2
    r = run(args.probe, png=args.png or None, out_dir=args.out_dir)
    import subprocess

    version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip() or browser
    md = table(r, version)
    print(md)
    if r["console_errors"]:
        print("console errors:\n  " + "\n  ".join(r["console_errors"]))
    if not args.no_results:
        out = ROOT / "benchmarks" / "results" / "report_browser.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# HTML report in headless Chromium\n\n`python benchmarks/check_report_browser.py`\n\n" + md
        )
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
