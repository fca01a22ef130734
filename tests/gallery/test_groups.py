"""Groups: assigned in bulk in the admin by an organization's admin, and the filter of
the reports, attendance, the dashboard and the API. Another organization's group is
never a choice, and a 404 in the API."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from rest_framework.test import APIClient

from apps.core.models import AuditEvent
from apps.gallery.models import Group, GroupMember, Person
from apps.gallery.services import group_add_people
from apps.organizations.models import Camera
from apps.sightings import selectors
from apps.sightings.attendance import attendance
from tests.sightings.recorded import record_sighting
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")


@pytest.fixture
def acme():
    tenant = make_tenant("acme", "Ann", "door")
    organization = tenant.organization
    bob = Person.objects.create(organization=organization, name="Bob")
    staff = Group.objects.create(organization=organization, name="staff")
    return tenant, bob, staff


def test_an_admin_puts_selected_people_in_a_group_in_bulk(acme):
    tenant, bob, staff = acme
    other = make_tenant("other", "Olga", "gate")
    foreign = Group.objects.create(organization=other.organization, name="their staff")
    admin = Client()
    admin.force_login(tenant.admin)
    chosen = {"action": "add_to_group", ACTION_CHECKBOX_NAME: [tenant.person.pk, bob.pk]}
    page = admin.post("/admin/gallery/person/", chosen)
    assert page.status_code == 200 and b"2 selected:" in page.content
    assert b"Ann" in page.content and b"Bob" in page.content
    assert b"staff" in page.content and b"their staff" not in page.content
    refused = admin.post("/admin/gallery/person/", {**chosen, "apply": "1", "group": foreign.pk})
    assert refused.status_code == 200 and not GroupMember.objects.exists()  # not a valid choice
    done = admin.post("/admin/gallery/person/", {**chosen, "apply": "1", "group": staff.pk})
    assert done.status_code == 302
    assert set(staff.people.all()) == {tenant.person, bob}
    event = AuditEvent.objects.get(target_type="gallery.Group")
    assert event.user == tenant.admin and sorted(event.detail["added"]) == sorted([tenant.person.pk, bob.pk])
    # Once more: nobody joins twice.
    admin.post("/admin/gallery/person/", {**chosen, "apply": "1", "group": staff.pk})
    assert GroupMember.objects.filter(group=staff).count() == 2
    listed = admin.get("/admin/gallery/person/", {"groups__id__exact": staff.pk})
    assert listed.status_code == 200 and b"Bob" in listed.content
    removed = admin.post(
        "/admin/gallery/person/",
        {"action": "remove_from_group", ACTION_CHECKBOX_NAME: [bob.pk], "apply": "1", "group": staff.pk},
    )
    assert removed.status_code == 302 and list(staff.people.all()) == [tenant.person]
    # A viewer may not manage groups.
    viewer = Client()
    viewer.force_login(tenant.viewer)
    assert viewer.get("/admin/gallery/group/").status_code in (302, 403)


def test_reports_attendance_dashboard_and_api_filter_by_group(acme):
    tenant, bob, staff = acme
    organization, ann = tenant.organization, tenant.person
    group_add_people(group=staff, people=[ann])
    door = Camera.objects.get(organization=organization, name="door")
    day = date.today() - timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    record_sighting(organization, ann, door, at)
    record_sighting(organization, bob, door, at + timedelta(minutes=30))
    record_sighting(organization, None, door, at + timedelta(minutes=40))

    # make_tenant saw Ann once already.
    assert {s.person for s in selectors.sightings_filter(organization=organization, group=staff.pk)} == {ann}
    assert {v.person for v in selectors.visits_filter(organization=organization, group=staff.pk)} == {ann}
    rows = attendance(organization=organization, since=day, until=day + timedelta(days=1), group=staff.pk).rows
    assert [row.person for row in rows] == ["Ann"]
    everybody = selectors.dashboard(organization=organization)
    of_staff = selectors.dashboard(organization=organization, group=staff.pk)
    assert everybody.known_faces - of_staff.known_faces == 1  # Bob's
    assert everybody.unknown_faces >= 1 and of_staff.unknown_faces == 0
    assert sum(n for _, n in everybody.visits_per_camera) - sum(n for _, n in of_staff.visits_per_camera) == 1

    viewer = Client()
    viewer.force_login(tenant.viewer)
    page = viewer.get("/reports/attendance/", {"since": day, "until": day, "group": staff.pk}).content.decode()
    assert ">Ann</a>" in page and ">Bob</a>" not in page  # (Bob is still a choice of the person filter)
    dashboard = viewer.get("/reports/", {"group": staff.pk}).content.decode()
    assert 'id="group-filter"' in dashboard
    sightings = viewer.get("/reports/sightings/", {"group": staff.pk}).content.decode()
    assert ">Ann</a>" in sightings and ">Bob</a>" not in sightings

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {tenant.raw_key}")
    visits = api.get("/api/v1/visits/", {"group": staff.pk}).json()["results"]
    assert {v["person"]["name"] for v in visits} == {"Ann"}
    other = make_tenant("other", "Olga", "gate")
    foreign = Group.objects.create(organization=other.organization, name="their staff")
    for path in ("/api/v1/sightings/", "/api/v1/visits/", "/api/v1/attendance/"):
        answer = api.get(path, {"group": foreign.pk})
        assert answer.status_code == 404 and answer.json()["error"]["field"] == "group", (path, answer.content)
