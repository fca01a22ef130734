"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright
through executablePath (Playwright's own browser download is not used; this machine
cannot reach it). `make test` installs chromium when it is missing (`make browser`).

Screenshots go to var/test-artifacts/screenshots/ (or $TEST_ARTIFACTS/screenshots)."""

import os
import shutil
from contextlib import contextmanager
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


def write_y4m(path: Path, frames: list, fps: int = 10) -> Path:
    """YUV4MPEG2, 4:2:0: what Chromium's --use-file-for-fake-video-capture plays (in a loop)."""
    import cv2

    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@contextmanager
def fake_camera_browser(chromium, video: Path):
    """A Chromium of its own, on the session's Playwright, whose camera plays `video`:
    the fake camera is a launch flag. The camera permission is given per context
    (grant); --deny-permission-prompts refuses every ungranted request explicitly,
    instead of relying on what headless does with a prompt."""
    browser = chromium.browser_type.launch(
        executable_path=chromium_path(),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
            "--deny-permission-prompts",
        ],
    )
    try:
        yield browser
    finally:
        browser.close()
