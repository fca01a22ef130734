"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright
through executablePath (Playwright's own browser download is not used; this machine
cannot reach it). `make test` installs chromium when it is missing (`make browser`).

Screenshots go to var/test-artifacts/screenshots/ (or $TEST_ARTIFACTS/screenshots)."""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "chromium not found: run `make browser` (apt-get install chromium) or set CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM
    # calls are synchronous and safe, so Django's async guard is relaxed for them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class Screenshots:
    def __init__(self, page, name: str):
        self.page, self.folder, self.count = page, ARTIFACTS / "screenshots" / name, 0
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, label: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
