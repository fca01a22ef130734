"""The kiosk (/kiosk/) in headless Chromium with a fake camera, against the live server
and the real worker. The camera plays the performer of `hamilton_clip.mp4` (enrolled
from his reference photo): looking at it, then turning his head to his right, he is
welcomed by name; his still photo, held in front of it, is refused every time, in
whichever direction the kiosk asks."""

import re

import pytest
from playwright.sync_api import expect

from apps.organizations.models import ApiKey, Camera
from apps.organizations.services import api_key_create
from apps.recognition.models import Frame
from apps.recognition.pipeline import presence
from apps.sightings.models import CheckIn
from tests.browser import Screenshots, fake_camera_browser, write_y4m
from tests.clients.helpers import letterbox
from tests.faces import people_photo_bytes, video_frames
from tests.worker import enroll_images, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIRST, LAST = 90, 135  # his turn to his right, in frames of the clip
LIN = "face_recognition/lin_manuel_miranda/lin-manuel-miranda.png"
FPS = 15
ANSWERED = 60_000  # ms: the first frame may wait for the worker to load its model
REFUSED = "Not recognized — please see reception"


@pytest.fixture(scope="module")
def clip():
    frames, fps = video_frames("hamilton_clip.mp4", LAST + 1)
    step = round(fps / FPS)  # the clip is 30 fps; the fake camera plays 15
    return [letterbox(frame) for frame in frames[FIRST : LAST + 1 : step]]


@pytest.fixture(scope="module")
def turning_video(clip, tmp_path_factory):
    """He looks at the camera for 1 s, turns to his right (1.5 s), holds it 1 s; in a loop."""
    frames = [clip[0]] * FPS + clip + [clip[-1]] * FPS
    return write_y4m(tmp_path_factory.mktemp("kiosk") / "turning.y4m", frames, fps=FPS)


@pytest.fixture(scope="module")
def still_video(clip, tmp_path_factory):
    """The first frame of his turn, and nothing else: a photo held still."""
    return write_y4m(tmp_path_factory.mktemp("kiosk") / "still.y4m", [clip[0]] * (2 * FPS), fps=FPS)


@pytest.fixture
def front_door(make_org):
    organization, general_key, _ = make_org("acme", detector="blazeface")
    camera = Camera.objects.create(organization=organization, name="front door")
    enroll_images(organization, "Lin-Manuel Miranda", [people_photo_bytes(LIN)])
    _, kiosk_key = api_key_create(organization=organization, name="kiosk", scopes=[ApiKey.Scope.KIOSK], camera=camera)
    return organization, kiosk_key, general_key


def open_kiosk(browser, live_server, key: str):
    context = browser.new_context(viewport={"width": 1024, "height": 768}, permissions=["camera"])
    page = context.new_page()
    page.goto(f"{live_server.url}/kiosk/")
    expect(page.locator("#setup")).to_be_visible()
    page.fill("#kiosk-key", key)
    page.click("#save-key")
    return page


def test_a_person_turning_as_asked_is_welcomed_by_name(
    live_server, front_door, chromium, turning_video, celery_worker, monkeypatch
):
    organization, kiosk_key, general_key = front_door
    monkeypatch.setattr(presence, "challenge_direction", lambda rng=None: "right")  # the way he turns
    with fake_camera_browser(chromium, turning_video) as browser:
        # A key that is not a kiosk's is refused with the API's words, and not kept.
        page = open_kiosk(browser, live_server, general_key)
        expect(page.locator("#setup-error")).to_contain_text("lacks the scope")
        page.context.close()

        page = open_kiosk(browser, live_server, kiosk_key)
        shot = Screenshots(page, "kiosk")
        panel = page.locator("#panel")
        try:
            expect(page.locator("#place")).to_have_text("acme · front door")
            expect(panel).to_have_attribute("data-state", "challenge", timeout=ANSWERED)
            expect(page.locator("#message")).to_have_text("Turn your head to your right")
            expect(page.locator("#arrow")).to_have_text("→")
            shot("challenge")
            expect(panel).to_have_attribute("data-state", "welcome", timeout=ANSWERED)
            expect(page.locator("#message")).to_have_text("Welcome, Lin-Manuel Miranda")
            expect(page.locator("#detail")).to_have_text(re.compile(r"^Checked in at \d\d:\d\d"))
            shot("welcome")
            check_in = CheckIn.objects.get(pk=page.locator("#panel").get_attribute("data-check-in"))
            assert (check_in.outcome, check_in.person.name) == ("passed", "Lin-Manuel Miranda")
            wait_for(lambda: Frame.objects.filter(pk=check_in.frame_id, status="done").exists(), "its frame")
            # The key is kept on the device: the kiosk starts again without it after a reload.
            page.reload()
            expect(page.locator("#door")).to_be_visible()
            expect(page.locator("#setup")).to_be_hidden()
        finally:
            shot("last")
            page.context.close()


def test_a_still_photo_is_refused_every_time(live_server, front_door, chromium, still_video, celery_worker):
    organization, kiosk_key, _ = front_door
    with fake_camera_browser(chromium, still_video) as browser:
        page = open_kiosk(browser, live_server, kiosk_key)
        shot = Screenshots(page, "kiosk-still-photo")
        panel = page.locator("#panel")
        try:
            for attempt in range(2):  # the direction is random: twice, most often both ways
                expect(panel).to_have_attribute("data-state", "challenge", timeout=ANSWERED)
                expect(panel).to_have_attribute("data-state", "refused", timeout=ANSWERED)
                expect(page.locator("#message")).to_have_text(REFUSED)
                expect(page.locator("#detail")).to_have_text("Please turn your head when asked.")
                shot(f"refused-{attempt}")
                expect(panel).to_have_attribute("data-state", re.compile("idle|challenge"), timeout=10_000)
            rows = CheckIn.objects.filter(organization=organization).exclude(outcome="pending")
            assert rows.count() >= 2
            assert {(r.outcome, r.reason) for r in rows} == {("refused", "no_turn")}
            assert not Frame.objects.filter(organization=organization).exists()
        finally:
            shot("last")
            page.context.close()


def test_a_wrong_key_asks_for_the_key_again(live_server, chromium, still_video):
    with fake_camera_browser(chromium, still_video) as browser:
        page = open_kiosk(browser, live_server, "nope.nope")
        try:
            expect(page.locator("#setup-error")).to_have_text("Invalid or revoked API key.")
            assert page.evaluate("localStorage.getItem('faces.kiosk.key')") is None
        finally:
            page.context.close()
