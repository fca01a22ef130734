"""Kiosk check-ins through the API, with the real worker and the real model: the
performer of `hamilton_clip.mp4` (enrolled from his reference photo in the shared
`people` set) turns his head to his right in frames 90 to 135. Sent to the kiosk as a
live camera would (the frame of the clip at each moment since the check-in began),
the turn checks him in when it was asked for, and counts in attendance; asked for
the other way, or shown a still frame, the check-in is refused and nothing of him is
recorded as present. Also: what a kiosk key may do, and tenancy."""

import time
from datetime import timedelta

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from apps.frames.services import check_ins_abandoned_sweep
from apps.gallery.services import person_delete
from apps.organizations.models import ApiKey, Camera
from apps.organizations.services import api_key_create
from apps.recognition.models import Frame
from apps.recognition.pipeline import presence
from apps.sightings.attendance import attendance, attendance_range
from apps.sightings.models import CheckIn, Sighting
from tests.faces import people_photo_bytes, photo_bytes, video_frames
from tests.worker import enroll_images, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIRST, LAST = 90, 135  # the turn to his right, in frames of the clip
LIN = "face_recognition/lin_manuel_miranda/lin-manuel-miranda.png"


@pytest.fixture(scope="module")
def clip():
    frames, fps = video_frames("hamilton_clip.mp4", LAST + 1)
    return [cv2.imencode(".jpg", frame)[1].tobytes() for frame in frames], fps


def kiosk_client(organization, camera) -> APIClient:
    _, raw_key = api_key_create(organization=organization, name="kiosk", scopes=[ApiKey.Scope.KIOSK], camera=camera)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def door(make_org):
    """acme, with Lin-Manuel Miranda enrolled, and the kiosk at its front door."""
    organization, _, _ = make_org("acme", detector="blazeface")
    organization.time_zone = "America/New_York"
    organization.save()
    camera = Camera.objects.create(organization=organization, name="front door")
    lin = enroll_images(organization, "Lin-Manuel Miranda", [people_photo_bytes(LIN)])
    return organization, camera, lin, kiosk_client(organization, camera)


def ask_for(monkeypatch, direction: str) -> None:
    # The direction is random (SystemRandom); the clip turns one way only.
    monkeypatch.setattr(presence, "challenge_direction", lambda rng=None: direction)


def check_in(kiosk, frame_at, limit: float = 10.0) -> tuple[dict, dict, int]:
    """Start a check-in on frame_at(0), then send frame_at(seconds since) until it ends."""
    started = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(frame_at(0.0))}, format="multipart")
    assert started.status_code == 201, started.content
    begun, answer, sent = time.monotonic(), started.json(), 1
    while answer["outcome"] == "pending":
        assert time.monotonic() - begun < limit, answer
        frame = frame_at(time.monotonic() - begun)
        response = kiosk.post(
            f"/api/v1/kiosk/check-ins/{started.json()['id']}/frames/", {"image": image(frame)}, format="multipart"
        )
        assert response.status_code == 200, response.content
        answer, sent = response.json(), sent + 1
    return started.json(), answer, sent


def image(data: bytes):
    return SimpleUploadedFile("frame.jpg", data, content_type="image/jpeg")


def live(clip):
    """The clip as a camera shows it: the frame of each moment, from frame 90 on."""
    frames, fps = clip
    return lambda seconds: frames[min(FIRST + round(seconds * fps), LAST)]


def test_a_head_turned_as_asked_checks_in_and_counts_in_attendance(door, clip, celery_worker, monkeypatch):
    organization, camera, lin, kiosk = door
    info = kiosk.get("/api/v1/kiosk/")
    assert info.status_code == 200
    assert info.json()["camera"]["name"] == "front door" and info.json()["challenge_seconds"] == presence.WINDOW_SECONDS

    ask_for(monkeypatch, "right")
    started, answer, sent = check_in(kiosk, live(clip))
    assert started["direction"] == "right" and started["outcome"] == "pending"
    assert started["person"] is None  # not shown before the challenge is passed
    assert answer["outcome"] == "passed" and answer["reason"] == "passed", answer
    assert answer["person"] == {"id": lin.pk, "name": "Lin-Manuel Miranda"}
    assert answer["frames"] == sent >= presence.MIN_OBSERVATIONS

    row = CheckIn.objects.get(pk=answer["id"])
    assert row.turn >= presence.MIN_TURN and row.camera == camera and row.person == lin
    assert not row.image  # the held frame is gone; the check-in's frame is recorded instead
    assert row.frame.camera == camera and row.frame.captured_at == row.started_at
    wait_for(lambda: Frame.objects.get(pk=row.frame_id).status == "done", "the check-in's frame")
    sighting = Sighting.objects.get(frame=row.frame)
    assert sighting.person == lin and sighting.visit is not None

    since, until = attendance_range(organization=organization)
    [present] = attendance(organization=organization, since=since, until=until).rows
    assert present.person_id == lin.pk and present.cameras == ("front door",)
    assert present.checked_in == row.started_at

    # Erasing him erases his check-ins too.
    person_delete(person=lin)
    assert not CheckIn.objects.filter(organization=organization).exists()


def test_the_other_way_or_a_still_frame_is_refused_and_records_nobody(door, clip, celery_worker, monkeypatch):
    organization, camera, lin, kiosk = door
    ask_for(monkeypatch, "left")
    _, wrong_way, _ = check_in(kiosk, live(clip))
    assert (wrong_way["outcome"], wrong_way["reason"], wrong_way["person"]) == ("refused", "wrong_way", None)
    assert wrong_way["finished_at"] is not None

    # His photo held up to the kiosk: the same frame, as the camera captures it again and again.
    frames, _ = clip
    still = cv2.imdecode(np.frombuffer(frames[FIRST], "uint8"), cv2.IMREAD_COLOR)
    shots = [cv2.imencode(".jpg", still, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes() for q in (95, 85, 75, 90, 80)]
    for direction in ("left", "right"):
        ask_for(monkeypatch, direction)
        _, refused, sent = check_in(kiosk, lambda seconds: shots[round(seconds * 10) % len(shots)])
        assert (refused["outcome"], refused["reason"], refused["person"]) == ("refused", "no_turn", None), refused
        assert sent > presence.MIN_OBSERVATIONS
    rows = CheckIn.objects.filter(organization=organization)
    assert {(r.outcome, r.reason) for r in rows} == {("refused", "wrong_way"), ("refused", "no_turn")}
    # Reception can see whose face it was; nothing counts him present.
    assert {r.person_id for r in rows} == {lin.pk} and not any(r.image for r in rows)
    assert not Frame.objects.filter(organization=organization).exists()
    since, until = attendance_range(organization=organization)
    assert attendance(organization=organization, since=since, until=until).rows == []

    # An ended check-in takes no more frames.
    ended = kiosk.post(
        f"/api/v1/kiosk/check-ins/{refused['id']}/frames/", {"image": image(shots[0])}, format="multipart"
    )
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "check_in_ended"


def test_a_check_in_starts_only_on_a_face_looking_at_the_camera(
    door, clip, celery_worker, django_capture_on_commit_callbacks
):
    organization, camera, lin, kiosk = door
    frames, _ = clip
    blank = cv2.imencode(".jpg", np.zeros((360, 640, 3), np.uint8))[1]
    nobody = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(blank.tobytes())}, format="multipart")
    assert nobody.status_code == 422 and nobody.json()["error"]["code"] == "no_face"
    turned = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(frames[LAST])}, format="multipart")
    assert turned.status_code == 422 and turned.json()["error"]["code"] == "face_not_frontal", turned.content
    broken = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(b"not an image")}, format="multipart")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "image_invalid"
    assert not CheckIn.objects.exists()

    # A check-in left half-way is refused as abandoned when the kiosk starts the next.
    first = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(frames[FIRST])}, format="multipart")
    second = kiosk.post("/api/v1/kiosk/check-ins/", {"image": image(frames[FIRST])}, format="multipart")
    assert first.status_code == second.status_code == 201
    assert CheckIn.objects.get(pk=first.json()["id"]).reason == "abandoned"
    assert CheckIn.objects.get(pk=second.json()["id"]).outcome == "pending"

    # One left pending, its kiosk gone: the sweep refuses it and deletes the frame it held.
    pending = CheckIn.objects.get(pk=second.json()["id"])
    held = pending.image.name
    assert pending.image.storage.exists(held)
    assert check_ins_abandoned_sweep() == 0  # not yet: it is within its window
    CheckIn.objects.filter(pk=pending.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert check_ins_abandoned_sweep() == 1
    pending.refresh_from_db()
    assert (pending.outcome, pending.reason, pending.image.name) == ("refused", "abandoned", "")
    assert not pending.image.storage.exists(held)


def test_a_kiosk_key_checks_in_at_its_camera_and_does_nothing_else(make_org):
    acme, _, acme_api = make_org("acme")
    other, _, _ = make_org("other")
    door, gate = (Camera.objects.create(organization=acme, name=name) for name in ("door", "gate"))
    door_kiosk, gate_kiosk = kiosk_client(acme, door), kiosk_client(acme, gate)
    other_kiosk = kiosk_client(other, Camera.objects.create(organization=other, name="door"))

    pending = CheckIn.objects.create(organization=acme, camera=door, direction="left", started_at=timezone.now())
    url = f"/api/v1/kiosk/check-ins/{pending.pk}/frames/"
    photo = photo_bytes("img1.jpg")

    def frame():
        return {"image": image(photo)}

    # Another kiosk's check-in, or another organization's, is not found (before any model runs).
    for kiosk in (gate_kiosk, other_kiosk):
        answer = kiosk.post(url, frame(), format="multipart")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    # The kiosk's key checks in and nothing else; other keys and sessions cannot check in.
    for path in ("/api/v1/frames/", "/api/v1/identify/", "/api/v1/people/"):
        assert door_kiosk.post(path, frame(), format="multipart").status_code == 403
    assert door_kiosk.get("/api/v1/sightings/").status_code == 403
    assert acme_api.get("/api/v1/kiosk/").status_code == 403
    assert acme_api.post("/api/v1/kiosk/check-ins/", frame(), format="multipart").status_code == 403
    # Such keys are made only so.
    with pytest.raises(ValueError, match="camera"):
        api_key_create(organization=acme, scopes=[ApiKey.Scope.KIOSK])
    with pytest.raises(ValueError, match="alone"):
        api_key_create(organization=acme, scopes=[ApiKey.Scope.KIOSK, ApiKey.Scope.FRAMES_WRITE], camera=door)
    assert ApiKey.Scope.KIOSK not in api_key_create(organization=acme)[0].scopes
