"""The browser check of the report pages: Debian's Chromium, headless, offline. The page is
opened as a copy with one inline script appended that marks every image with whether it
decoded (naturalWidth > 0), so ``--dump-dom`` shows it; the page itself holds no script."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARK_IMAGES = ("<script>window.addEventListener('load', () => { for (const image of "
               "document.images) image.setAttribute('data-decoded', image.complete && "
               "image.naturalWidth > 0 ? 'yes' : 'no'); });</script>")


def chromium() -> str:
    """The browser, or a skip that says why (a failure where STSANET_REQUIRE_CHROMIUM=1, as in
    CI, which installs it)."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if found:
        return found
    reason = ("Chromium is not installed (make browser, or apt-get install -y chromium); the "
              "HTML report's browser check needs it")
    if os.environ.get("STSANET_REQUIRE_CHROMIUM") == "1":
        pytest.fail(reason + ", and STSANET_REQUIRE_CHROMIUM=1 requires it")
    pytest.skip(reason)


def open_page(page: Path, work: Path, screenshot: Path, width: int = 1400,
              height: int = 2400) -> str:
    """The DOM of ``page`` after load (images marked data-decoded), and a screenshot."""
    browser = chromium()
    work.mkdir(parents=True, exist_ok=True)
    checked = work / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("</body>", MARK_IMAGES + "</body>"))
    common = [browser, *FLAGS, f"--user-data-dir={work / 'profile'}"]
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom",
                          checked.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = subprocess.run([*common, f"--screenshot={screenshot}",
                           f"--window-size={width},{height}", "--hide-scrollbars",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    return dom.stdout
