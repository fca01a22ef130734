"""Attendance from real frames: posted through the API with their capture times, as a
camera does, recognized by the session's Celery worker with the Dlib model, grouped
into visits; read per day of the organization's time zone (New York, UTC-5 in
December), across its midnight."""

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.organizations.models import ApiKey, Camera, Membership
from apps.organizations.services import api_key_create
from apps.sightings.attendance import attendance
from apps.sightings.models import Visit
from tests.faces import photo_bytes
from tests.worker import enroll

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_YORK = ZoneInfo("America/New_York")
# Ann (id01) in img2 and img4; a visit across New York's midnight, at the door, and a
# later one in the lobby the next morning.
CAPTURES = [
    ("door", "img2.jpg", datetime(2026, 12, 1, 23, 58, 30, tzinfo=NEW_YORK)),
    ("door", "img4.jpg", datetime(2026, 12, 1, 23, 59, 30, tzinfo=NEW_YORK)),
    ("door", "img2.jpg", datetime(2026, 12, 2, 0, 0, 30, tzinfo=NEW_YORK)),
    ("door", "img4.jpg", datetime(2026, 12, 2, 0, 1, 30, tzinfo=NEW_YORK)),
    ("lobby", "img2.jpg", datetime(2026, 12, 2, 9, 0, 0, tzinfo=NEW_YORK)),
]


@pytest.fixture
def seen_across_midnight(celery_worker, make_org):
    organization, key, client = make_org("attendance")
    organization.time_zone, organization.visit_gap_seconds = "America/New_York", 120
    organization.save(update_fields=["time_zone", "visit_gap_seconds"])
    cameras = {name: Camera.objects.create(organization=organization, name=name) for name in ("door", "lobby")}
    ann = enroll(organization, "Ann", "img1.jpg")
    for camera, photo, captured_at in CAPTURES:
        answer = client.post(
            "/api/v1/frames/?wait=30",
            {
                "image": io.BytesIO(photo_bytes(photo)),
                "camera": cameras[camera].pk,
                "captured_at": captured_at.isoformat(),
            },
            format="multipart",
        )
        assert answer.status_code == 200 and answer.json()["status"] == "done", answer.content
        assert [face["person"]["name"] for face in answer.json()["faces"]] == ["Ann"]
    assert Visit.objects.filter(organization=organization).count() == 2  # across midnight, and the lobby
    return organization, ann


def test_a_day_is_the_organizations_and_a_visit_across_its_midnight_counts_in_both(seen_across_midnight):
    organization, ann = seen_across_midnight
    first, second = attendance(organization=organization, since=date(2026, 12, 1), until=date(2026, 12, 3)).rows
    midnight = datetime(2026, 12, 2, tzinfo=NEW_YORK)
    assert (first.person, first.period, first.cameras) == ("Ann", date(2026, 12, 1), ("door",))
    assert first.first_seen == CAPTURES[0][2] and first.last_seen == midnight
    assert first.present == timedelta(seconds=90)
    assert (second.period, second.cameras) == (date(2026, 12, 2), ("door", "lobby"))
    assert second.first_seen == midnight and second.last_seen == CAPTURES[-1][2]
    assert second.present == timedelta(seconds=90)  # the lobby's single frame adds no time
    assert first.first_seen.tzinfo == NEW_YORK

    [week] = attendance(
        organization=organization, since=date(2026, 11, 30), until=date(2026, 12, 7), period="week"
    ).rows
    assert (week.period, week.days, week.present) == (date(2026, 11, 30), 2, timedelta(seconds=180))
    # In UTC all of it falls on December 2nd (04:58 to 14:00): one day.
    organization.time_zone = "UTC"
    [utc] = attendance(organization=organization, since=date(2026, 12, 1), until=date(2026, 12, 3)).rows
    assert (utc.period, utc.days, utc.present) == (date(2026, 12, 2), 1, timedelta(seconds=180))
    # Filters: a camera, and a day range that holds none of it.
    organization.time_zone = "America/New_York"
    lobby_camera = Camera.objects.get(organization=organization, name="lobby")
    [lobby] = attendance(
        organization=organization, since=date(2026, 12, 1), until=date(2026, 12, 3), camera=lobby_camera.pk
    ).rows
    assert (lobby.period, lobby.cameras, lobby.present) == (date(2026, 12, 2), ("lobby",), timedelta(0))
    assert lobby.first_seen == lobby.last_seen == CAPTURES[-1][2]
    assert attendance(organization=organization, since=date(2026, 12, 3), until=date(2026, 12, 4)) == ([], 0)


def test_the_report_page_and_its_csv_show_it_to_members_only(seen_across_midnight, make_org, client):
    organization, ann = seen_across_midnight
    viewer = User.objects.create_user("attendance-viewer", password="pw")
    Membership.objects.create(organization=organization, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    query = {"since": "2026-12-01", "until": "2026-12-02"}
    page = client.get("/reports/attendance/", query).content.decode()
    assert "Days of America/New_York" in page
    assert "2026-12-01 23:58" in page and "2026-12-02 09:00" in page and "door, lobby" in page
    export = client.get("/reports/attendance/export/", {**query, "period": "month"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(r["period"], r["person"], r["days_present"], r["present_seconds"]) for r in rows] == [
        ("2026-12-01", "Ann", "2", "180")
    ]
    assert rows[0]["first_seen"] == "2026-12-01T23:58:30-05:00"
    # Another organization's member sees nobody; its person id is no filter here.
    other, _, _ = make_org("attendance-other")
    stranger = User.objects.create_user("other-viewer", password="pw")
    Membership.objects.create(organization=other, user=stranger, role=Membership.Role.VIEWER)
    client.force_login(stranger)
    page = client.get("/reports/attendance/", {**query, "person": ann.pk}).content.decode()
    assert "Ann" not in page and "Select a valid choice" in page


def test_the_api_answers_it_in_the_organizations_time_zone_with_its_scope(seen_across_midnight, make_org):
    organization, ann = seen_across_midnight
    _, raw_key = api_key_create(organization=organization, name="reports", scopes=[ApiKey.Scope.REPORTS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    answer = api.get("/api/v1/attendance/", {"since": "2026-12-01", "until": "2026-12-02"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["count"] == 2
    first, second = answer.json()["results"]
    assert first == {
        "person": {"id": ann.pk, "name": "Ann"},
        "period": "2026-12-01",
        "days": 1,
        "first_seen": "2026-12-01T23:58:30-05:00",
        "last_seen": "2026-12-02T00:00:00-05:00",
        "present_seconds": 90,
        "cameras": ["door"],
        "checked_in": None,  # not at a kiosk (tests/sightings/test_check_ins.py)
    }
    assert second["cameras"] == ["door", "lobby"] and second["last_seen"] == "2026-12-02T09:00:00-05:00"
    month = api.get("/api/v1/attendance/", {"since": "2026-12-01", "until": "2026-12-31", "period": "month"})
    assert [(r["period"], r["days"], r["present_seconds"]) for r in month.json()["results"]] == [("2026-12-01", 2, 180)]
    backwards = api.get("/api/v1/attendance/", {"since": "2026-12-02", "until": "2026-12-01"})
    assert backwards.status_code == 400 and backwards.json()["error"]["code"] == "validation_error"
    # Another organization's key sees nobody, whichever person it names.
    other, _, other_client = make_org("attendance-api-other")
    _, other_key = api_key_create(organization=other, name="reports", scopes=[ApiKey.Scope.REPORTS_READ])
    other_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_key}")
    foreign = other_client.get("/api/v1/attendance/", {"since": "2026-12-01", "until": "2026-12-02", "person": ann.pk})
    assert foreign.status_code == 200 and foreign.json()["results"] == []
    # A camera's key (frames only) may not read who came when.
    _, camera_key = api_key_create(organization=organization, name="door", scopes=[ApiKey.Scope.FRAMES_WRITE])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {camera_key}")
    denied = api.get("/api/v1/attendance/")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
