"""The watchlist: an admin puts a person or a stranger on it, with a reason; their
sightings raise `watchlist.seen`, signed and retried by the real worker like every
webhook, once per stay (the visit gap), and a highlighted row on the dashboard.
Another organization hears nothing and sees no entry."""

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import AuditEvent
from apps.gallery.models import Group, Person
from apps.gallery.services import group_add_people
from apps.organizations.models import Camera
from apps.sightings.models import StrangerProfile, WatchlistEntry
from apps.sightings.services import stranger_promote
from apps.webhooks.models import WebhookSubscription
from apps.webhooks.signing import verify
from tests.sightings.recorded import record_sighting
from tests.tenants import make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sightings_of_watched_people_and_strangers_raise_signed_retried_events(celery_worker, receiver):
    acme, other = make_tenant("acme", "Ann", "door"), make_tenant("other", "Olga", "gate")
    organization, ann = acme.organization, acme.person
    subscription = WebhookSubscription.objects.create(
        organization=organization, url=f"{receiver.url}/acme", events=["watchlist.seen"]
    )
    WebhookSubscription.objects.create(
        organization=other.organization, url=f"{receiver.url}/other", events=["watchlist.seen"]
    )
    door = Camera.objects.get(organization=organization, name="door")
    bob = Person.objects.create(organization=organization, name="Bob")
    admin = Client()
    admin.force_login(acme.admin)
    added = admin.post("/admin/sightings/watchlistentry/add/", {"person": ann.pk, "reason": "Banned since March"})
    assert added.status_code == 302, added.content.decode()[-2000:]
    entry = WatchlistEntry.objects.get(person=ann)
    assert entry.added_by == acme.admin
    assert AuditEvent.objects.filter(target_type="sightings.WatchlistEntry", user=acme.admin, action="created").exists()
    # Neither a person and a stranger at once, nor nobody.
    assert admin.post("/admin/sightings/watchlistentry/add/", {"reason": "?"}).status_code == 200

    receiver.fail["/acme"] = 1  # the first attempt gets a 500: the worker retries
    start = timezone.now() - timedelta(minutes=10)
    first = record_sighting(organization, ann, door, start)
    record_sighting(organization, ann, door, start + timedelta(seconds=20))  # still there: no second event
    record_sighting(organization, bob, door, start + timedelta(seconds=25))  # not watched
    [failed, delivered] = receiver.wait("/acme", 2)
    assert failed["body"] == delivered["body"]
    assert verify(subscription.secret, delivered["headers"]["X-Faces-Signature"], delivered["body"])
    event = json.loads(delivered["body"])
    assert event["type"] == "watchlist.seen"
    assert event["data"]["person"] == {"id": ann.pk, "name": "Ann"}
    assert event["data"]["watchlist"]["reason"] == "Banned since March"
    assert event["data"]["watchlist"]["added_by"] == acme.admin.username
    assert event["data"]["sighting"]["id"] == first.pk and event["data"]["sighting"]["camera"]["name"] == "door"

    # Back after more than the visit gap (60 s): another event.
    record_sighting(organization, ann, door, start + timedelta(seconds=200))
    # A stranger, put on the watchlist after their first appearance, is announced next time.
    unknown = record_sighting(organization, None, door, start + timedelta(seconds=300), similarity=0.01, axis=7)
    profile = StrangerProfile.objects.get(pk=unknown.stranger_id)
    WatchlistEntry.objects.create(organization=organization, stranger=profile, reason="Tried the back door")
    record_sighting(organization, None, door, start + timedelta(seconds=310), similarity=0.01, axis=7)
    requests = receiver.wait("/acme", 4)
    later = [json.loads(r["body"])["data"] for r in requests[2:]]
    assert later[0]["person"]["name"] == "Ann"
    assert later[1]["stranger"] == {"id": profile.pk} and later[1]["watchlist"]["reason"] == "Tried the back door"
    time.sleep(1.0)  # nothing else comes
    assert len(receiver.received("/acme")) == 4 and receiver.received("/other") == []

    # Promoted, the stranger stays watched as the person they became.
    stranger_promote(organization=organization, profile=profile, name="Sam")
    assert WatchlistEntry.objects.get(reason="Tried the back door").person.name == "Sam"

    viewer = Client()
    viewer.force_login(acme.viewer)
    dashboard = viewer.get("/reports/").content.decode()
    assert 'id="watchlist"' in dashboard
    assert "Banned since March" in dashboard and "Tried the back door" in dashboard
    # With a group, the group's watched people only (a stranger is in no group).
    staff = Group.objects.create(organization=organization, name="staff")
    group_add_people(group=staff, people=[bob])
    of_staff = viewer.get("/reports/", {"group": staff.pk}).content.decode()
    assert "Banned since March" not in of_staff and "Tried the back door" not in of_staff
    # The other organization's admin and dashboard know nothing of it.
    theirs = Client()
    theirs.force_login(other.admin)
    assert theirs.get(f"/admin/sightings/watchlistentry/{entry.pk}/change/").status_code == 404
    theirs.force_login(other.viewer)
    assert "Banned since March" not in theirs.get("/reports/").content.decode()


@pytest.mark.django_db(transaction=False)
def test_the_api_lists_adds_and_removes_entries_within_the_organization_only():
    acme, other = make_tenant("acme-api", "Ann", "door"), make_tenant("other-api", "Olga", "gate")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {acme.raw_key}")
    added = api.post("/api/v1/watchlist/", {"person": acme.person.pk, "reason": "Lost badge"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["person"] == {"id": acme.person.pk, "name": "Ann"} and added.json()["reason"] == "Lost badge"
    assert AuditEvent.objects.filter(target_type="sightings.WatchlistEntry", action="created").count() == 1
    again = api.post("/api/v1/watchlist/", {"person": acme.person.pk, "reason": "twice"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate"
    both = api.post("/api/v1/watchlist/", {"reason": "nobody"}, format="json")
    assert both.status_code == 400 and both.json()["error"]["field"] == "person"
    foreign = api.post("/api/v1/watchlist/", {"person": other.person.pk, "reason": "x"}, format="json")
    assert foreign.status_code == 404 and foreign.json()["error"]["field"] == "person"
    assert [e["reason"] for e in api.get("/api/v1/watchlist/").json()["results"]] == ["Lost badge"]

    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Api-Key {other.raw_key}")
    entry_id = added.json()["id"]
    assert theirs.get("/api/v1/watchlist/").json()["results"] == []
    assert theirs.delete(f"/api/v1/watchlist/{entry_id}/").status_code == 404
    assert api.delete(f"/api/v1/watchlist/{entry_id}/").status_code == 204
    assert not WatchlistEntry.objects.exists()
    assert AuditEvent.objects.filter(target_type="sightings.WatchlistEntry", action="deleted").count() == 1
