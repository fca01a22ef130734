"""The capture page (/capture/) in headless Chromium with a fake camera: Chromium plays a
.y4m video that the test builds from a shared photo of id01, the page sends its frames
to the API with the member's session (or an API key typed in), the Celery worker
recognizes them with the Dlib model, and the page shows the name over the video. Also:
a denied permission, no camera, real throttling, network and API errors."""

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from playwright.sync_api import expect

from apps.organizations.models import Membership
from apps.recognition.models import Frame
from apps.sightings.models import Sighting
from tests.browser import Screenshots, fake_camera_browser, write_y4m
from tests.clients.helpers import letterbox
from tests.faces import photo
from tests.worker import enroll, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT, FPS = 640, 480, 10
RECOGNIZED = 60_000  # ms: the first frame may wait for the worker to load its model


def letterboxed(path: Path, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return letterbox(cv2.imread(str(path)), (width, height))


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    """Two seconds of id01 (img4, a photo that is not enrolled), letterboxed to 640x480."""
    frame = letterboxed(photo("img4.jpg"))
    return write_y4m(tmp_path_factory.mktemp("camera") / "id01.y4m", [frame] * (2 * FPS), fps=FPS)


@pytest.fixture(scope="module")
def camera_browser(chromium, camera_video):
    with fake_camera_browser(chromium, camera_video) as browser:
        yield browser


def member(organization, username: str) -> User:
    user = User.objects.create_user(username, password="secret-pw")
    Membership.objects.create(organization=organization, user=user, role="viewer")
    return user


def open_capture(browser, live_server, username: str, *, camera: bool = True):
    context = browser.new_context(viewport={"width": 1100, "height": 760}, permissions=["camera"] if camera else [])
    page = context.new_page()
    page.goto(f"{live_server.url}/capture/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "secret-pw")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Capture")
    return page


# --- The page itself ---------------------------------------------------------------------


@pytest.mark.django_db  # no browser, no worker: the closest mark wins
def test_the_page_is_for_signed_in_members(client, make_org):
    organization, _, _ = make_org("alpha")
    assert client.get("/capture/").url.startswith("/accounts/login/")
    client.force_login(User.objects.create_user("loner"))
    assert client.get("/capture/").status_code == 403
    client.force_login(member(organization, "viewer"))
    response = client.get("/capture/")
    assert response.status_code == 200
    assert b'data-frames-url="/api/v1/frames/?wait=10"' in response.content
    assert re.search(rb'<script src="/static/capture/capture\.[0-9a-f]{12}\.js">', response.content)


# --- In the browser -------------------------------------------------------------------


def test_the_enrolled_person_is_named_over_the_live_video(live_server, make_org, camera_browser, celery_worker):
    alpha, _, _ = make_org("alpha")
    beta, beta_key, _ = make_org("beta")
    enroll(alpha, "id01", "img1.jpg")
    member(alpha, "viewer")

    page = open_capture(camera_browser, live_server, "viewer")
    shot = Screenshots(page, "capture")
    try:
        expect(page.locator("#device-field")).to_be_hidden()  # shown once several cameras are known
        shot("ready")
        page.select_option("#rate", "2")
        page.click("#start")
        expect(page.locator("#names li.known")).to_have_text(re.compile(r"^id01 \d+ %$"), timeout=RECOGNIZED)
        expect(page.locator("#overlay")).to_have_attribute("data-faces", "1")
        expect(page.locator("#rtt")).to_have_text(re.compile(r"^\d+ ms$"))
        expect(page.locator("#status")).to_contain_text("Recognizing: 1 face")
        expect(page.locator("#stop")).to_be_enabled()
        assert page.evaluate("document.getElementById('video').videoWidth") == WIDTH
        expect(page.locator("#device option")).to_have_count(1)  # Chromium's one fake camera
        expect(page.locator("#device-field")).to_be_hidden()
        shot("recognized")

        # The session's frames are the organization's: stored, and sighted as id01.
        sighting = Sighting.objects.filter(frame__organization=alpha).select_related("person").first()
        assert sighting is not None and sighting.person.name == "id01"
        assert not Frame.objects.filter(organization=beta).exists()

        # An API key typed in the page is used instead of the session: beta's key, and
        # beta has enrolled nobody, so the same face is a stranger there.
        page.click("#stop")
        expect(page.locator("#status")).to_have_text("Stopped.")
        page.fill("#api-key", beta_key)
        page.click("#start")
        expect(page.locator("#names li")).to_have_text(["unknown"], timeout=RECOGNIZED)
        expect(page.locator("#overlay")).to_have_attribute("data-faces", "1")
        wait_for(lambda: Frame.objects.filter(organization=beta, status="done").exists(), "beta's frame")
        shot("api-key-of-another-organization")

        # A wrong key stops the page with the API's message: retrying cannot help.
        page.click("#stop")
        page.fill("#api-key", "nope.nope")
        page.click("#start")
        expect(page.locator("#status")).to_contain_text("authentication_failed", timeout=RECOGNIZED)
        expect(page.locator("#status")).to_contain_text("Invalid or revoked API key. Check the API key.")
        expect(page.locator("#start")).to_be_enabled()
        shot("wrong-api-key")
    finally:
        shot("last")
        page.context.close()


def test_throttling_pauses_sending_for_retry_after_and_says_so(live_server, make_org, camera_browser, celery_worker):
    alpha, _, _ = make_org("alpha")
    member(alpha, "viewer")
    page = open_capture(camera_browser, live_server, "viewer")
    shot = Screenshots(page, "capture-throttled")
    try:
        with override_settings(API_RATE_PER_ORGANIZATION="2/min"):
            page.select_option("#rate", "5")
            page.click("#start")
            status = page.locator("#status")
            expect(status).to_have_text(re.compile(r"^Throttled, retrying in \d+ s$"), timeout=RECOGNIZED)
            first = status.text_content()
            sent = page.locator("#sent").text_content()
            assert sent == "3"  # two frames let through, the third refused
            shot("throttled")
            # It counts down while sending nothing (the throttle's Retry-After is ~60 s).
            expect(status).not_to_have_text(first, timeout=5_000)
            seconds = [int(re.search(r"(\d+) s$", text).group(1)) for text in (first, status.text_content())]
            assert 30 < seconds[1] < seconds[0] <= 60, seconds
            expect(page.locator("#sent")).to_have_text(sent)
            assert Frame.objects.filter(organization=alpha).count() == 2
    finally:
        shot("last")
        page.context.close()


def test_network_and_api_errors_back_off_and_say_so(live_server, make_org, camera_browser):
    alpha, _, _ = make_org("alpha")
    member(alpha, "viewer")
    page = open_capture(camera_browser, live_server, "viewer")
    shot = Screenshots(page, "capture-errors")
    answers = []

    def unavailable(route):
        answers.append(route.request)
        error = {"error": {"code": "worker_unavailable", "message": "No worker answered.", "field": None}}
        route.fulfill(status=503, content_type="application/json", body=json.dumps(error))

    try:
        page.route("**/api/v1/frames/**", lambda route: route.abort("connectionrefused"))
        page.click("#start")
        status = page.locator("#status")
        expect(status).to_have_text("Network error: the server cannot be reached, retrying in 1 s")
        expect(status).to_have_text(re.compile(r"cannot be reached, retrying in 2 s$"), timeout=5_000)
        shot("network-error")

        page.unroute("**/api/v1/frames/**")
        page.route("**/api/v1/frames/**", unavailable)
        expect(status).to_have_text(
            re.compile(r"^Error 503 \(worker_unavailable\): No worker answered, retrying in \d+ s$"), timeout=15_000
        )
        assert answers[0].headers["x-csrftoken"]  # the session's POST carries the CSRF token
        shot("api-error")
    finally:
        shot("last")
        page.context.close()


def test_a_denied_permission_says_so(live_server, make_org, camera_browser):
    alpha, _, _ = make_org("alpha")
    member(alpha, "viewer")
    page = open_capture(camera_browser, live_server, "viewer", camera=False)
    shot = Screenshots(page, "capture-denied")
    try:
        page.click("#start")
        expect(page.locator("#status")).to_contain_text("Camera permission denied. Allow the camera for this site")
        expect(page.locator("#status")).to_have_class(re.compile(r"\berror\b"))
        expect(page.locator("#start")).to_be_enabled()
        expect(page.locator("#sent")).to_have_text("0")
        shot("denied")
    finally:
        page.context.close()


def test_no_camera_says_so(live_server, make_org, chromium):
    if any(Path("/dev").glob("video*")) or os.environ.get("CHROMIUM_HAS_CAMERA"):
        pytest.skip("this machine has a camera")
    alpha, _, _ = make_org("alpha")
    member(alpha, "viewer")
    page = open_capture(chromium, live_server, "viewer")  # the session's browser: no fake camera
    shot = Screenshots(page, "capture-no-camera")
    try:
        page.click("#start")
        expect(page.locator("#status")).to_contain_text("No camera found.")
        shot("no-camera")
    finally:
        page.context.close()
