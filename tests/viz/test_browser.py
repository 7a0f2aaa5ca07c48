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


@pytest.mark.skipif(not BROWSER, reason="chromium not installed (apt-get install -y chromium)")
def test_render_reads_back_the_dom_and_console_errors_and_screenshots(tmp_path):
    """viz.browser directly: the DOM after scripts ran, console.error calls and uncaught errors caught without
    changing the file, a PNG of the window's size."""
    from viz.browser import render

    page = tmp_path / "page.html"
    text = ("<html><head><title>t</title></head><body><p id='made'></p><script>"
            "document.getElementById('made').textContent = 'by script'; console.error('first');"
            "undefinedFunction();</script></body></html>")
    page.write_text(text)
    r = render(page, png=tmp_path / "shot.png", window=(300, 200))
    assert "by script" in r.dom and page.read_text() == text
    assert any("first" in e for e in r.errors) and any("undefinedFunction" in e for e in r.errors)
    png = r.png.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 300
    clean = tmp_path / "clean.html"
    clean.write_text("<html><body>quiet</body></html>")
    assert render(clean).errors == []


def test_no_browser_is_reported_with_the_fix(tmp_path, monkeypatch):
    from viz.browser import find_browser, no_browser_message, render, screenshot

    monkeypatch.setenv("CODI_LENS_CHROMIUM", str(tmp_path / "no-such-browser"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser() is None
    (tmp_path / "p.html").write_text("<html></html>")
    for call in (lambda: render(tmp_path / "p.html"), lambda: screenshot(tmp_path / "p.html", tmp_path / "p.png")):
        with pytest.raises(RuntimeError, match="apt-get install -y chromium"):
            call()
    assert "$CODI_LENS_CHROMIUM" in no_browser_message() and not (tmp_path / "p.png").exists()
    monkeypatch.delenv("CODI_LENS_CHROMIUM")
    assert find_browser() is None                                     # nothing on this PATH either
