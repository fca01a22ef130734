"""The report pages in headless Chromium, on data made the real way: photos enrolled
and frames recognized by the Celery worker process with the Dlib model. A viewer signs
in, filters, opens a sighting, reassigns it and promotes a stranger, and the person
they created is then recognized. The other organization stays invisible throughout."""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.frames import services as recognition
from apps.gallery.models import FaceImage
from apps.gallery.services import person_create
from apps.organizations.models import Camera, Membership
from apps.recognition.models import Frame
from apps.sightings.models import Correction, Sighting, StrangerProfile
from tests.browser import Screenshots
from tests.faces import photo_bytes
from tests.worker import enroll, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def see(organization, camera, *photos: str) -> list[Frame]:
    frames = [recognition.frame_create(organization=organization, camera=camera, data=photo_bytes(p)) for p in photos]
    wait_for(lambda: all(f.status == "done" for f in Frame.objects.filter(pk__in=[f.pk for f in frames])), "frames")
    return frames


def member(organization, username: str) -> User:
    user = User.objects.create_user(username, password="secret-pw")
    Membership.objects.create(organization=organization, user=user, role="viewer")
    return user


def test_a_viewer_filters_opens_reassigns_and_promotes_in_a_browser(celery_worker, live_server, make_org, chromium):
    alpha, _, _ = make_org("alpha")
    beta, _, _ = make_org("beta")
    door = Camera.objects.create(organization=alpha, name="front door")
    beta_camera = Camera.objects.create(organization=beta, name="beta lobby")
    ann = enroll(alpha, "Ann", "img1.jpg")
    zed = person_create(organization=alpha, name="Zed")
    enroll(beta, "Bob Beta", "img16.jpg")
    # Ann twice, then id03 twice (a stranger to alpha), then id06 once (another stranger).
    see(alpha, door, "img4.jpg", "img2.jpg", "img13.jpg", "img14.jpg", "img20.jpg")
    [beta_frame] = see(beta, beta_camera, "img17.jpg")
    beta_sighting = Sighting.objects.get(frame=beta_frame)
    member(alpha, "viewer")
    member(beta, "beta-viewer")

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    shot = Screenshots(page, "reports")
    try:
        page.goto(f"{live_server.url}/reports/")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", "secret-pw")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator("#unknown-share strong")).to_contain_text("60")  # 3 of 5 faces
        expect(page.locator("svg")).to_have_count(3)
        shot("dashboard")

        page.click("text=Sightings & visits")
        expect(page.locator("#sightings tbody tr")).to_have_count(5)
        page.select_option("select[name=known]", "yes")
        page.click("#filters button[type=submit]")
        expect(page.locator("#sightings tbody tr")).to_have_count(2)
        expect(page.locator("#sightings td.person")).to_have_text(["Ann", "Ann"])
        shot("sightings-known")
        page.select_option("select[name=view]", "visits")
        page.click("#filters button[type=submit]")
        expect(page.locator("#visits tbody tr")).to_have_count(1)
        expect(page.locator("#visits tbody tr td").nth(5)).to_have_text("2")  # one visit of 2 frames
        shot("visits")

        # Open Ann's latest sighting and reassign it to Zed.
        page.goto(f"{live_server.url}/reports/sightings/?known=yes")
        page.locator("#sightings a.open").first.click()
        expect(page.locator("#verdict")).to_have_text("Ann")
        expect(page.locator("#candidates tbody tr").first).to_contain_text("Ann")
        expect(page.locator("#matched")).to_be_visible()
        expect(page.locator("#quality")).to_contain_text("px")
        shot("sighting")
        page.select_option("#reassign select[name=person]", label="Zed")
        page.click("#reassign button[type=submit]")
        expect(page.locator(".messages")).to_contain_text("Reassigned to Zed.")
        expect(page.locator("#verdict")).to_have_text("Zed")
        expect(page.locator("#corrections")).to_contain_text("Ann → Zed by viewer")
        shot("reassigned")
        correction = Correction.objects.get()
        assert (correction.from_person, correction.to_person) == (ann, zed)

        # Two strangers: id03's two faces in one profile, id06's in another. Promote id03.
        page.click("text=Strangers")
        expect(page.locator("article.stranger")).to_have_count(2)
        profile = StrangerProfile.objects.get(sightings_count=2)
        card = page.locator(f"#stranger-{profile.pk}")
        expect(card.locator(".samples img")).to_have_count(2)
        shot("strangers")
        card.locator("input[name=name]").fill("Carol")
        card.locator("button", has_text="Promote").click()
        expect(page.locator("h1")).to_have_text("Carol")
        expect(page.locator("#timeline li")).to_have_count(1)
        shot("promoted")
        carol = StrangerProfile.objects.get(pk=profile.pk).person
        wait_for(lambda: not FaceImage.objects.filter(person=carol, status="pending").exists(), "Carol's photos")
        assert set(FaceImage.objects.filter(person=carol).values_list("status", flat=True)) == {"enrolled"}

        # A photo of id03 never seen before is now recognized as Carol, without retraining.
        see(alpha, door, "img15.jpg")
        page.reload()
        expect(page.locator("#photos figcaption")).to_have_text(["enrolled", "enrolled"])
        expect(page.locator("#timeline li")).to_have_count(1)
        expect(page.locator("#timeline li")).to_contain_text("3 frames")
        shot("recognized-after-promotion")

        # Nothing of the other organization is reachable, by page or by image.
        for url in [f"/reports/sightings/{beta_sighting.pk}/", f"/media/{beta_sighting.crop.name}"]:
            assert page.goto(f"{live_server.url}{url}").status == 404, url
        page.goto(f"{live_server.url}/reports/sightings/")
        expect(page.locator("body")).not_to_contain_text("Bob Beta")
        expect(page.locator("body")).not_to_contain_text("beta lobby")
    finally:
        shot("last")
        page.close()
