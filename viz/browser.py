"""Headless Chromium: render an HTML file, read back the drawn DOM and console errors, take a PNG screenshot.

Used for static PNG export of the report and for checking that a report draws without errors. Needs the Debian
package `chromium` (`apt-get install -y chromium`) or any Chrome/Chromium on PATH (or $CODI_LENS_CHROMIUM).

    >>> import tempfile, pathlib
    >>> from viz.browser import find_browser, render
    >>> page = pathlib.Path(tempfile.mkdtemp()) / "page.html"
    >>> _ = page.write_text("<html><head></head><body><p id='x'>drawn</p><script>console.error('boom')</script>")
    >>> r = render(page) if find_browser() else None          # headless Chromium, a few seconds
    >>> r is None or (r.errors == ['["boom"]'] and "drawn" in r.dom)     # the console error is caught
    True
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
NO_BROWSER = (
    "no headless Chromium found (looked for $CODI_LENS_CHROMIUM, then {names} on PATH); install it with "
    "`apt-get install -y chromium` (Debian/Ubuntu) to get PNG export"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",
    "--enable-logging=stderr",
    "--v=0",
]
ERROR_MARK = "codi-lens-console-errors"
# Put first in <head> of a copy of the page: records console.error calls and uncaught errors into the DOM.
_CATCHER = (
    "<script>(function(){var e=[];window.__codiErrors=e;function put(){var p=document.getElementById('"
    + ERROR_MARK
    + "');if(!p&&document.body){p=document.createElement('pre');p.id='"
    + ERROR_MARK
    + "';"
    "p.style.display='none';document.body.appendChild(p);}if(p){p.textContent=JSON.stringify(e);}}"
    "var ce=console.error;console.error=function(){e.push(Array.prototype.join.call(arguments,' '));put();"
    "return ce.apply(console,arguments);};window.addEventListener('error',function(ev){e.push('Uncaught '+"
    "(ev.message||ev.type));put();});window.addEventListener('unhandledrejection',function(ev){"
    "e.push('Unhandled rejection '+ev.reason);put();});document.addEventListener('DOMContentLoaded',put);"
    "})();</script>"
)


def find_browser() -> str | None:
    """Path of a Chromium/Chrome executable, or None. $CODI_LENS_CHROMIUM wins when set.

    >>> found = find_browser()                  # e.g. '/usr/bin/chromium' (Debian's `chromium` package)
    >>> found is None or Path(found).exists()
    True
    """
    env = os.environ.get("CODI_LENS_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def no_browser_message() -> str:
    """What to do when no browser is found (the text of the RuntimeError and of the report's PNG warning).

    >>> no_browser_message()
    'no headless Chromium found (looked for $CODI_LENS_CHROMIUM, then chromium, ... to get PNG export'
    """
    return NO_BROWSER.format(names=", ".join(CANDIDATES))


@dataclass
class Rendered:
    """What a headless render of a page gave back.

    >>> r = Rendered(dom="<html>...</html>", errors=[])
    >>> r.errors == [] and r.png is None                        # a page that drew without console errors
    True
    """

    dom: str  # the DOM after scripts ran (--dump-dom)
    errors: list[str]  # console.error calls, uncaught errors and rejections
    png: Path | None = None  # the screenshot, when asked for
    log: list[str] = field(default_factory=list)  # the browser's CONSOLE log lines


def _run(browser: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="codi-lens-chromium-") as profile:  # new empty profile every run
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            errors="replace",
        )


def _with_catcher(html: str) -> str:
    m = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE)
    return html[: m.end()] + _CATCHER + html[m.end() :] if m else _CATCHER + html


def render(
    html_path: str | Path,
    png: str | Path | None = None,
    window: tuple[int, int] = (1400, 1800),
    budget_ms: int = 15000,
    timeout: float = 180.0,
    browser: str | None = None,
) -> Rendered:
    """Open `html_path` in headless Chromium; return the rendered DOM, console errors and maybe a screenshot.

    Console errors are caught by a small script put at the top of a temporary copy of the page (the file
    itself is not changed) and from the browser's own log ("Uncaught ..." lines).
    Raises RuntimeError when no browser is found.

    >>> page = Path(tempfile.mkdtemp()) / "page.html"
    >>> _ = page.write_text("<html><head></head><body><script>document.body.append('made by a script')</script>")
    >>> r = render(page) if find_browser() else None          # headless Chromium, a few seconds
    >>> r is None or ("made by a script" in r.dom and r.errors == [])     # the DOM after scripts ran
    True
    """
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(no_browser_message())
    html_path = Path(html_path).resolve()
    if not html_path.exists():
        raise FileNotFoundError(f"{html_path} does not exist; write the report first")
    with tempfile.TemporaryDirectory(prefix="codi-lens-page-") as tmp:
        probe = Path(tmp) / html_path.name
        probe.write_text(_with_catcher(html_path.read_text(encoding="utf-8")), encoding="utf-8")
        r = _run(
            browser,
            [
                f"--virtual-time-budget={budget_ms}",
                f"--window-size={window[0]},{window[1]}",
                "--dump-dom",
                probe.as_uri(),
            ],
            timeout,
        )
    if r.returncode != 0 and not r.stdout:
        raise RuntimeError(f"{browser} exited with code {r.returncode}: {r.stderr[-2000:]}")
    dom = r.stdout
    log = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    errors = [line for line in log if "Uncaught" in line]
    m = re.search(r'<pre id="' + ERROR_MARK + r'"[^>]*>(.*?)</pre>', dom, flags=re.DOTALL)
    if m and m.group(1).strip() not in ("", "[]"):
        errors.append(m.group(1).strip())
    shot = None
    if png is not None:
        shot = screenshot(
            html_path, png, window=window, budget_ms=budget_ms, timeout=timeout, browser=browser
        )
    return Rendered(dom=dom, errors=errors, png=shot, log=log)


def screenshot(
    html_path: str | Path,
    png: str | Path,
    window: tuple[int, int] = (1400, 1800),
    budget_ms: int = 15000,
    timeout: float = 180.0,
    browser: str | None = None,
) -> Path:
    """Save a PNG of the top `window` pixels of the page. Raises RuntimeError when no browser is found.

    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "page.html").write_text("<html><body><h1>codi-lens</h1></body></html>")
    >>> png = screenshot(folder / "page.html", folder / "page.png", window=(320, 200)) if find_browser() else None
    >>> png is None or png.read_bytes()[1:4] == b"PNG"     # headless Chromium, a few seconds
    True
    """
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(no_browser_message())
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    r = _run(
        browser,
        [
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={window[0]},{window[1]}",
            f"--screenshot={png}",
            Path(html_path).resolve().as_uri(),
        ],
        timeout,
    )
    if not png.exists():
        raise RuntimeError(f"{browser} did not write {png} (exit code {r.returncode}): {r.stderr[-2000:]}")
    return png
