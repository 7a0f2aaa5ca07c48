"""The report opened in headless Chromium (benchmarks/check_report_browser.py): no console errors, every
figure and heatmap drawn, hostile data text not executed, a screenshot written; the checker itself catches a
deliberate error. Skipped where chromium is not installed (CI installs Debian's `chromium` package)."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROWSER = shutil.which("chromium") or (Path("/usr/bin/chromium").exists() and "/usr/bin/chromium")


@pytest.mark.skipif(not BROWSER, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from check_report_browser import run

    r = run(png=str(tmp_path / "report.png"), out_dir=str(tmp_path))
    assert r["console_errors"] == []
    assert r["figures_drawn"] == r["figures"] == 6  # heatmap + ROC per grid, comparison, lens
    assert r["heatmaps_drawn"] == r["heatmaps"] == 5  # one per grid, two in the comparison, the lens
    assert r["main_svg"] >= 2 * r["figures"]
    assert not r["injected_ran"] and r["hostile_shown_as_text"]
    assert r["control_detected"]  # the checker can fail
    png = Path(r["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert r["ok"]
