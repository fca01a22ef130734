"""Visits, strangers and corrections through the API: one organization's rows only,
the error shape for wrong moves, and the same services as the report pages."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import AuditEvent
from apps.gallery.models import Person
from apps.sightings import services
from apps.sightings.models import Correction, Sighting, StrangerProfile
from tests.sightings.recorded import record_sighting
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db


def api(tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {tenant.raw_key}")
    return client


def stranger(tenant) -> StrangerProfile:
    sighting = record_sighting(
        tenant.organization,
        None,
        tenant.camera,
        timezone.now(),
        similarity=0.01,
        axis=3,
        crop=tenant.sighting.crop.name,
    )
    return StrangerProfile.objects.get(sightings=sighting)


@pytest.fixture
def tenants():
    a, b = make_tenant("rep-a", "Ann", "door-a"), make_tenant("rep-b", "Bob", "door-b", "img13.jpg")
    for tenant in (a, b):
        services.visit_assign(organization=tenant.organization, sighting=tenant.sighting)
    return a, b


def test_visits_list_with_filters(tenants):
    a, _ = tenants
    client = api(a)
    [visit] = client.get("/api/v1/visits/").json()["results"]
    assert visit["person"] == {"id": a.person.pk, "name": "Ann"}
    assert (visit["camera"], visit["frames"], visit["best_sighting"]) == (a.camera.pk, 1, a.sighting.pk)
    assert client.get(visit["crop_url"]).status_code == 200
    assert client.get("/api/v1/visits/?known=false").json()["results"] == []
    assert client.get(f"/api/v1/visits/?person={a.person.pk}&min_similarity=0.5").json()["results"]
    assert client.get("/api/v1/visits/?min_similarity=2").status_code == 400


def test_strangers_promote_and_dismiss(tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    client = api(a)
    first, second, theirs = stranger(a), stranger(a), stranger(b)
    assert first == second  # the same face: one profile
    listed = client.get("/api/v1/strangers/").json()["results"]
    assert [(s["id"], s["sightings"], s["status"]) for s in listed] == [(first.pk, 2, "open")]
    assert len(listed[0]["crop_urls"]) == 2

    for url in (f"/api/v1/strangers/{theirs.pk}/promote/", f"/api/v1/strangers/{theirs.pk}/dismiss/"):
        response = client.post(url, {"name": "Eve"}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    response = client.post(f"/api/v1/strangers/{first.pk}/promote/", {"name": " "}, format="json")
    assert (response.status_code, response.json()["error"]["field"]) == (400, "name")

    with django_capture_on_commit_callbacks():
        response = client.post(f"/api/v1/strangers/{first.pk}/promote/", {"name": "Eve"}, format="json")
    assert response.status_code == 201, response.content
    eve = Person.objects.get(pk=response.json()["id"])
    assert eve.face_images.count() == 2 and Sighting.objects.filter(person=eve).count() == 2
    response = client.post(f"/api/v1/strangers/{first.pk}/dismiss/")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_open")
    assert client.get("/api/v1/strangers/?status=promoted").json()["results"][0]["person"] == eve.pk

    other = stranger(a)  # Eve's enrollment has not run: the face starts a new profile
    assert client.post(f"/api/v1/strangers/{other.pk}/dismiss/").json()["status"] == "dismissed"
    assert client.get("/api/v1/strangers/").json()["results"] == []
    actions = set(AuditEvent.objects.filter(organization=a.organization).values_list("action", flat=True))
    assert {"stranger_promoted", "stranger_dismissed"} <= actions


def test_corrections(tenants):
    a, b = tenants
    client = api(a)
    url = f"/api/v1/sightings/{a.sighting.pk}/correct/"
    for body, status, field in [
        ({"person": b.person.pk}, 404, "person"),  # another organization's person
        ({}, 400, "person"),
        ({"person": "x"}, 400, "person"),
        ({"person": a.person.pk}, 409, "person"),  # no change
    ]:
        response = client.post(url, body, format="json")
        assert (response.status_code, response.json()["error"]["field"]) == (status, field), response.content
    assert (
        client.post(f"/api/v1/sightings/{b.sighting.pk}/correct/", {"person": None}, format="json").status_code == 404
    )
    assert not Correction.objects.exists()

    response = client.post(url, {"person": None}, format="json")
    assert response.status_code == 201
    assert response.json()["from_person"] == a.person.pk and response.json()["to_person"] is None
    assert client.get(f"/api/v1/sightings/{a.sighting.pk}/").json()["face"]["person"] is None
    assert client.get("/api/v1/visits/").json()["results"] == []
