"""Attendance's arithmetic and its pages, on visits written as the grouping writes them
(the path from real frames to visits is tests/sightings/test_attendance.py): time
present as the union of overlapping visits, a visit over two midnights, and slices
taken in the query (the report page, the API) that match the whole."""

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.gallery.models import Person
from apps.organizations.models import ApiKey, Camera, Membership
from apps.organizations.services import api_key_create
from apps.sightings.attendance import attendance, attendance_stream
from apps.sightings.models import Visit

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def at(day: int, hour: float) -> datetime:
    return datetime(2026, 11, day, tzinfo=PARIS) + timedelta(hours=hour)


def visit(person, camera, started_at, ended_at) -> Visit:
    return Visit.objects.create(
        organization=person.organization,
        person=person,
        camera=camera,
        started_at=started_at,
        ended_at=ended_at,
        frames=2,
        closed=True,
    )


@pytest.fixture
def paris(make_org):
    organization, key, client = make_org("attendance-paris")
    organization.time_zone = "Europe/Paris"
    organization.save(update_fields=["time_zone"])
    door, lab = (Camera.objects.create(organization=organization, name=name) for name in ("door", "lab"))
    return organization, door, lab


def test_time_present_is_the_union_of_the_days_visits_and_a_long_visit_counts_in_each_day(paris):
    organization, door, lab = paris
    ann = Person.objects.create(organization=organization, name="Ann")
    visit(ann, door, at(2, 9), at(2, 10))  # 9:00-10:00 at the door
    visit(ann, lab, at(2, 9.5), at(2, 11))  # 9:30-11:00 in the lab, overlapping: 2 h so far
    visit(ann, lab, at(2, 10), at(2, 10.5))  # inside both: nothing more
    visit(ann, door, at(2, 12), at(2, 12.5))  # 2.5 h
    visit(ann, lab, at(3, 22), at(5, 1))  # over two midnights: 2 h, 24 h and 1 h

    days = attendance(organization=organization, since=date(2026, 11, 1), until=date(2026, 11, 6)).rows
    assert [(row.period, row.present, row.cameras) for row in days] == [
        (date(2026, 11, 2), timedelta(hours=2.5), ("door", "lab")),
        (date(2026, 11, 3), timedelta(hours=2), ("lab",)),
        (date(2026, 11, 4), timedelta(hours=24), ("lab",)),
        (date(2026, 11, 5), timedelta(hours=1), ("lab",)),
    ]
    assert (days[0].first_seen, days[0].last_seen) == (at(2, 9), at(2, 12.5))
    assert (days[2].first_seen, days[2].last_seen) == (at(4, 0), at(5, 0))
    # Monday 2 November's week holds all of it, its days counted once each.
    [week] = attendance(organization=organization, since=date(2026, 11, 1), until=date(2026, 11, 9), period="week").rows
    assert (week.period, week.days, week.present) == (date(2026, 11, 2), 4, timedelta(hours=29.5))
    assert (week.first_seen, week.last_seen, week.cameras) == (at(2, 9), at(5, 1), ("door", "lab"))


@pytest.fixture
def sixty_rows(paris):
    """30 people, each at the door on 2 and 3 November: 60 rows per day."""
    organization, door, _ = paris
    for index in range(30):
        person = Person.objects.create(organization=organization, name=f"person {index:02d}")
        for day in (2, 3):
            visit(person, door, at(day, 8 + index / 60), at(day, 9))
    return organization


def test_a_slice_is_the_same_rows_as_the_whole_with_the_count_of_all(sixty_rows):
    november = {"organization": sixty_rows, "since": date(2026, 11, 1), "until": date(2026, 11, 30)}
    whole = attendance(**november)
    assert whole.total == len(whole.rows) == 60
    assert [row.person for row in whole.rows[:2]] == ["person 00", "person 01"]  # by day, then name
    assert attendance(**november, offset=25, limit=10) == (whole.rows[25:35], 60)
    assert attendance(**november, offset=55, limit=10) == (whole.rows[55:], 60)
    assert attendance(**november, offset=80, limit=10) == ([], 60)  # past the end, still counted


def test_the_stream_is_the_same_rows_as_the_whole_read_a_chunk_at_a_time(sixty_rows):
    november = {"organization": sixty_rows, "since": date(2026, 11, 1), "until": date(2026, 11, 30)}
    whole = attendance(**november).rows
    assert list(attendance_stream(**november, chunk=7)) == whole  # 60 rows: 8 full chunks and a part
    assert list(attendance_stream(**november, period="month")) == attendance(**november, period="month").rows
    assert list(attendance_stream(**{**november, "since": date(2026, 11, 4)})) == []


def test_the_report_page_and_the_api_read_one_page_at_a_time(sixty_rows, client):
    organization = sixty_rows
    viewer = User.objects.create_user("paris-viewer", password="pw")
    Membership.objects.create(organization=organization, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    november = {"since": "2026-11-01", "until": "2026-11-30"}

    def rows_on(page) -> list[tuple[str, str]]:
        html = client.get("/reports/attendance/", {**november, "page": page}).content.decode()
        return re.findall(r'<td>(2026-11-\d\d)</td>\s*<td class="person"><a [^>]*>(person \d\d)</a>', html)

    whole = [(f"2026-11-0{day}", f"person {i:02d}") for day in (2, 3) for i in range(30)]
    assert rows_on(1) == whole[:50] and rows_on(2) == whole[50:]
    assert rows_on(9) == whole[50:]  # past the end: the last page, as Django's paginator answers
    assert rows_on("next") == whole[:50]  # not a number: the first

    _, raw_key = api_key_create(organization=organization, name="reports", scopes=[ApiKey.Scope.REPORTS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    answer = api.get("/api/v1/attendance/", {**november, "limit": 7, "offset": 56}).json()
    assert answer["count"] == 60 and answer["next"] is None and "offset=49" in answer["previous"]
    assert [row["person"]["name"] for row in answer["results"]] == [f"person {i:02d}" for i in range(26, 30)]
    beyond = api.get("/api/v1/attendance/", {**november, "limit": 7, "offset": 70}).json()
    assert beyond["count"] == 60 and beyond["results"] == []
