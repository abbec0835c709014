#!/usr/bin/env python3
"""Check an HTML page with axe-core in headless Chromium, and take a screenshot of it.

Needs Debian's ``chromium`` and axe-core from ``npm ci --prefix tools/a11y``; nothing
from planb, no Python package beyond the standard library. Nothing leaves the
machine: the page is a local file and Chromium runs with its background networking,
component updates and sync off.

How: a copy of the page gets axe.min.js inlined and a script that runs ``axe.run()``
and writes the JSON result (base64) into an attribute of a new element; Chromium
loads the copy with a virtual time budget and ``--dump-dom`` prints the DOM, from
which the result is read back.

    python3 tools/a11y/axe_check.py report.html [--screenshot report.png]

Exit 1 when axe reports a serious or critical violation (all are printed).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
TIMEOUT = 120
_RESULT = re.compile(r'data-axe-result="([A-Za-z0-9+/=]*)"')
_RUNNER = """
<script>
(function () {
  function done(payload) {
    var node = document.createElement("div");
    node.setAttribute("id", "axe-result");
    node.setAttribute("hidden", "");
    var bytes = new TextEncoder().encode(JSON.stringify(payload));
    var text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    node.setAttribute("data-axe-result", btoa(text));
    document.body.appendChild(node);
  }
  window.addEventListener("load", function () {
    axe.run(document, {resultTypes: ["violations"]})
      .then(function (r) { done({violations: r.violations, url: r.url}); })
      .catch(function (e) { done({error: String(e)}); });
  });
})();
</script>
"""


class A11yToolMissing(RuntimeError):
    """Chromium or axe-core is not installed."""


def chromium() -> str:
    """The Chromium executable (A11yToolMissing when there is none)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise A11yToolMissing("chromium is not installed (apt-get install chromium)")


def missing() -> str | None:
    """Why the check cannot run here, or None when it can."""
    try:
        chromium()
    except A11yToolMissing as exc:
        return str(exc)
    if not AXE_JS.is_file():
        return f"{AXE_JS} is missing (npm ci --prefix tools/a11y)"
    return None


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def run_axe(page: Path) -> dict[str, Any]:
    """axe-core's result for ``page``: ``{"violations": [...]}`` (or ``{"error": ...}``)."""
    if not AXE_JS.is_file():
        raise A11yToolMissing(f"{AXE_JS} is missing (npm ci --prefix tools/a11y)")
    html = page.read_text(encoding="utf-8")
    # A "</script" inside axe's source would end the inline script early.
    axe = AXE_JS.read_text(encoding="utf-8").replace("</script", "<\\/script")
    injected = f"<script>{axe}</script>{_RUNNER}"
    at = html.rfind("</body>")
    html = html[:at] + injected + html[at:] if at >= 0 else html + injected
    with tempfile.TemporaryDirectory(prefix="planb-axe-") as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(html, encoding="utf-8")
        done = _run_chromium(["--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
                             Path(tmp) / "profile")
    found = _RESULT.search(done.stdout)
    if found is None:
        raise RuntimeError(f"no axe result in Chromium's DOM dump (exit {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return json.loads(base64.b64decode(found[1]).decode("utf-8"))  # type: ignore[no-any-return]


def screenshot(page: Path, png: Path, size: str = "1280,2000") -> Path:
    """A PNG of ``page`` as Chromium draws it at ``size`` (width,height)."""
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="planb-shot-") as tmp:
        done = _run_chromium([f"--screenshot={png}", f"--window-size={size}",
                              "--virtual-time-budget=5000", page.resolve().as_uri()],
                             Path(tmp) / "profile")
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return png


def print_pdf(page: Path, pdf: Path) -> Path:
    """``page`` printed to PDF by Chromium (its @page rules decide the paper size)."""
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="planb-pdf-") as tmp:
        done = _run_chromium([f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                              "--virtual-time-budget=5000", page.resolve().as_uri()],
                             Path(tmp) / "profile")
    if not pdf.is_file():
        raise RuntimeError(f"Chromium wrote no PDF (exit {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return pdf


def page_sizes_mm(pdf: Path) -> list[tuple[int, int]]:
    """Each page's (width, height) in millimetres, from the PDF's MediaBox entries."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)",
                       pdf.read_bytes())
    return [(round((float(x1) - float(x0)) * 25.4 / 72), round((float(y1) - float(y0)) * 25.4 / 72))
            for x0, y0, x1, y1 in boxes]


def blocking(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The serious and critical violations."""
    return [v for v in result.get("violations", []) if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """One paragraph per violation: impact, rule, help, and the first offending nodes."""
    lines = []
    for v in violations:
        lines.append(f"[{v.get('impact')}] {v.get('id')}: {v.get('help')} ({v.get('helpUrl')})")
        for node in v.get("nodes", [])[:5]:
            lines.append(f"    {' '.join(node.get('target', []))}: "
                         f"{(node.get('failureSummary') or '').splitlines()[-1:]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, metavar="PNG")
    args = parser.parse_args(argv)
    result = run_axe(args.page)
    if "error" in result:
        print(f"axe failed: {result['error']}", file=sys.stderr)
        return 2
    violations = result.get("violations", [])
    if violations:
        print(describe(violations))
    if args.screenshot:
        print(f"screenshot: {screenshot(args.page, args.screenshot)}")
    bad = blocking(result)
    print(f"{len(violations)} violation(s), {len(bad)} serious or critical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
