"""Letters on paper: the HTML printed to PDF by headless Chromium.

The same path planb's reports and the welcome poster take to PDF in the tests
(``tools/a11y/axe_check.py``): Chromium's ``--print-to-pdf``, the page's ``@page`` rule
choosing A4. Chromium runs with its networking, updates and sync off, on a local file
in a private temporary folder; the letters reference nothing outside themselves.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from planb.errors import PlanbError, PrerequisiteError
from planb.files import write_atomic

#: Seconds Chromium may take (9,000 letters print in a few minutes on two cores).
TIMEOUT = 1800


def chromium() -> str:
    """The Chromium executable; UsageError naming the fix when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise PrerequisiteError("PDF needs Chromium, which is not installed here",
                     hint="apt-get install chromium, or write HTML (--format html) and "
                          "print it from a browser (A4, no headers and footers)")


def print_pdf(html: str, pdf: Path, *, timeout: int = TIMEOUT) -> None:
    """``html`` printed to ``pdf`` (mode 0600: it holds codes), written atomically; Chromium
    itself writes only inside a private temporary folder."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="planb-letters-") as tmp:
        folder = Path(tmp)
        page = folder / "letters.html"
        page.write_text(html, encoding="utf-8")
        page.chmod(0o600)
        out = folder / "letters.pdf"
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                   "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={folder / 'profile'}", f"--print-to-pdf={out}",
                   "--no-pdf-header-footer", page.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise PlanbError(f"Chromium did not finish printing within {timeout} s",
                             hint="print fewer letters at once (--department)") from None
        if not out.is_file() or out.stat().st_size == 0:
            raise PlanbError(f"Chromium wrote no PDF (exit {done.returncode}): "
                             f"{done.stderr.strip()[-500:]}")
        write_atomic(pdf, out.read_bytes(), 0o600)
