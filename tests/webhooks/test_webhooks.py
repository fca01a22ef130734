"""Webhooks for real: a local HTTP receiver, the Celery worker process delivering and
retrying, signatures checked the way a receiver would check them."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.gallery.models import Person
from apps.organizations.models import Camera, Membership
from apps.sightings import services as sighting_services
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import delivery_attempt
from apps.webhooks.signing import verify
from tests.sightings.recorded import record_sighting

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ALL_EVENTS = ["visit.started", "visit.ended", "stranger.seen"]


def seen(organization, person, camera, at, embedding_axis: int = 0):
    return record_sighting(organization, person, camera, at, similarity=0.9 if person else 0.01, axis=embedding_axis)


def wait_status(delivery_filter, status: str, timeout: float = 30) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.filter(**delivery_filter).first()
        if delivery is not None and delivery.status == status:
            return delivery
        time.sleep(0.05)
    pytest.fail(f"delivery {delivery_filter} not {status}: {delivery}")


def test_events_are_signed_retried_after_a_500_and_logged(celery_worker, make_org, receiver):
    organization, _, _ = make_org("hooks")
    other, _, _ = make_org("other")
    subscription = WebhookSubscription.objects.create(
        organization=organization, url=f"{receiver.url}/hooks", events=ALL_EVENTS
    )
    WebhookSubscription.objects.create(organization=other, url=f"{receiver.url}/other", events=ALL_EVENTS)
    only_visits = WebhookSubscription.objects.create(
        organization=organization, url=f"{receiver.url}/visits", events=["visit.started"]
    )
    receiver.fail["/hooks"] = 1  # the first delivery gets a 500
    ann = Person.objects.create(organization=organization, name="Ann")
    door = Camera.objects.create(organization=organization, name="door")
    start = timezone.now() - timedelta(minutes=5)

    first = seen(organization, ann, door, start)
    seen(organization, ann, door, start + timedelta(seconds=20))  # the same visit: no new event
    [failed, delivered] = receiver.wait("/hooks", 2)

    for request in (failed, delivered):
        assert verify(subscription.secret, request["headers"]["X-Faces-Signature"], request["body"])
        assert request["headers"]["X-Faces-Event"] == "visit.started"
    assert failed["body"] == delivered["body"]  # the retry sends the same event
    payload = json.loads(delivered["body"])
    assert payload["type"] == "visit.started" and payload["organization"]["slug"] == "hooks"
    visit = payload["data"]["visit"]
    assert (visit["id"], visit["person"], visit["camera"]["name"]) == (
        first.visit_id,
        {"id": ann.pk, "name": "Ann"},
        "door",
    )
    assert payload["id"] == delivered["headers"]["X-Faces-Delivery"]
    log = wait_status({"subscription": subscription, "event": "visit.started"}, "delivered")
    assert (log.attempts, log.response_status) == (2, 200)
    [visits_request] = receiver.wait("/visits", 1)
    # Each subscription signs with its own secret.
    assert verify(only_visits.secret, visits_request["headers"]["X-Faces-Signature"], visits_request["body"])
    assert not verify(subscription.secret, visits_request["headers"]["X-Faces-Signature"], visits_request["body"])

    # A stranger appears (once per appearance), then the visit ends.
    seen(organization, None, door, start + timedelta(seconds=30), embedding_axis=5)
    seen(organization, None, door, start + timedelta(seconds=40), embedding_axis=5)
    assert sighting_services.visits_close(organization=organization, now=timezone.now()) == 1
    assert sighting_services.visits_close(organization=organization, now=timezone.now()) == 0
    events = [json.loads(r["body"])["type"] for r in receiver.wait("/hooks", 4)]
    assert sorted(events[2:]) == ["stranger.seen", "visit.ended"]
    ended = next(json.loads(r["body"]) for r in receiver.received("/hooks") if b"visit.ended" in r["body"])
    assert ended["data"]["visit"]["frames"] == 2
    stranger = next(json.loads(r["body"]) for r in receiver.received("/hooks") if b"stranger.seen" in r["body"])
    assert stranger["data"]["sighting"]["camera"]["name"] == "door"
    assert receiver.received("/other") == []  # another organization's subscription hears nothing
    assert len(receiver.received("/visits")) == 1  # it asked for visit.started only


def test_a_receiver_that_keeps_failing_ends_failed_and_can_be_resent_from_admin(
    celery_worker, make_org, receiver, django_user_model
):
    organization, _, _ = make_org("failing")
    subscription = WebhookSubscription.objects.create(
        organization=organization, url=f"{receiver.url}/down", events=["visit.started"]
    )
    receiver.fail["/down"] = 100
    ann = Person.objects.create(organization=organization, name="Ann")
    seen(organization, ann, None, timezone.now())
    delivery = wait_status({"subscription": subscription}, "failed")
    assert (delivery.attempts, delivery.response_status, delivery.error) == (3, 500, "HTTP 500")  # WEBHOOK_MAX_ATTEMPTS
    assert len(receiver.received("/down")) == 3

    admin = django_user_model.objects.create_user("hook-admin", is_staff=True)
    Membership.objects.create(organization=organization, user=admin, role="owner")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert "visit.started" in page and "failed" in page
    receiver.fail["/down"] = 0
    response = client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "retry", "_selected_action": [delivery.pk]}, follow=True
    )
    assert "1 deliveries queued again." in response.content.decode()
    delivery = wait_status({"pk": delivery.pk}, "delivered")
    assert delivery.attempts == 1


def test_subscriptions_are_made_in_admin_with_a_secret(make_org, django_user_model):
    organization, _, _ = make_org("admin-hooks")
    admin = django_user_model.objects.create_user("hooks-owner", is_staff=True)
    Membership.objects.create(organization=organization, user=admin, role="owner")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/webhooks/webhooksubscription/add/",
        {"url": "https://example.com/hook", "events": ["visit.started", "stranger.seen"], "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = WebhookSubscription.objects.get()
    assert subscription.organization == organization
    assert subscription.events == ["visit.started", "stranger.seen"] and len(subscription.secret) == 64


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "[::1]"])
def test_a_receiver_on_an_inside_address_is_refused_unless_allowed(make_org, receiver, settings, host):
    """SSRF: the address a receiver's name resolves to is checked when sending; loopback,
    link-local (cloud metadata) and private addresses fail at once, and nothing is sent."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    organization, _, _ = make_org("inside")
    port = receiver.server.server_port
    subscription = WebhookSubscription.objects.create(
        organization=organization, url=f"http://{host}:{port}/in", events=ALL_EVENTS
    )

    def pending() -> WebhookDelivery:
        # Made here, not queued: this test's process sends it, with its own setting.
        return WebhookDelivery.objects.create(
            organization=organization,
            subscription=subscription,
            event="visit.started",
            event_id=uuid.uuid4(),
            payload={},
        )

    delivery = pending()
    assert delivery_attempt(delivery_id=delivery.pk) is None  # not retried: it would be refused again
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.error.startswith(f"refused: http://{host}:{port}/in resolves to ")
    assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in delivery.error
    assert receiver.received("/in") == []

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    allowed = pending()
    if host in ("127.0.0.1", "localhost"):
        assert delivery_attempt(delivery_id=allowed.pk) is None
        allowed.refresh_from_db()
        assert allowed.status == "delivered" and len(receiver.received("/in")) == 1
