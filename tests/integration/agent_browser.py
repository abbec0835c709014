"""Debian's headless Chromium, driven by Playwright, for the tests of what agents see.

Playwright launches ``/usr/bin/chromium`` (never a downloaded browser). The lab's
public name is mapped to the proxy's address inside Chromium (no /etc/hosts edit),
the lab CA is not installed in the browser, so TLS errors are ignored there (the TLS
checks of ``planb verify`` cover the certificate). Every request the page makes is
kept, so a test can prove that nothing leaves the fallback.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

AXE_CHECK = Path(__file__).resolve().parents[2] / "tools" / "a11y" / "axe_check.py"
ARTIFACTS = Path(os.environ.get("PLANB_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")


def load_axe() -> ModuleType:
    """tools/a11y/axe_check.py (axe-core in Chromium), or a skip (a failure under CI)."""
    spec = importlib.util.spec_from_file_location("axe_check", AXE_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["axe_check"] = module
    spec.loader.exec_module(module)
    reason = module.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser accessibility check cannot run: {reason}")
        pytest.skip(reason)
    return module


def chromium_or_skip() -> str:
    """Debian's Chromium, or a skip (a failure under CI: the browser tests must run)."""
    path = shutil.which("chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        reason = "Chromium or Playwright is missing (apt install chromium; pip install -e .[dev])"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass
class Browsing:
    """A page in Chromium, the requests it made, and where its screenshots go."""

    page: Page
    folder: Path
    requests: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """A full-page screenshot kept as a test artifact."""
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot kept: {path}")
        return path

    def hosts(self) -> set[str]:
        """Every host the page sent a request to (data: and blob: URLs have none)."""
        return {urlsplit(u).hostname or "" for u in self.requests} - {""}


@contextmanager
def browse(hostname: str, address: str, artifacts: str, *,
           viewport: tuple[int, int] = (1280, 900)) -> Iterator[Browsing]:
    """A fresh Chromium profile where ``hostname`` resolves to ``address`` only."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    folder = ARTIFACTS / artifacts
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable,
            # --ignore-certificate-errors as well as the context's ignore_https_errors:
            # the browser client's service worker (/app/sw.js) is registered only over
            # a certificate the whole browser accepts, which the context's flag is not.
            args=["--no-sandbox", "--ignore-certificate-errors",
                  f"--host-resolver-rules=MAP {hostname} {address}, MAP * ~NOTFOUND"])
        try:
            context = browser.new_context(ignore_https_errors=True, locale="fr-FR",
                                          viewport={"width": viewport[0],
                                                    "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(30_000)
            browsing = Browsing(page, folder)

            def record(request: Request) -> None:
                browsing.requests.append(request.url)

            page.on("request", record)
            yield browsing
        finally:
            browser.close()
