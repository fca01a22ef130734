"""Events to the organization's webhooks: one delivery row per subscription, sent by a
Celery task after the event's transaction commits, retried with exponential backoff."""

import json
import logging
import uuid

import requests
import requests_hardened
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from requests_hardened.ip_filter import InvalidIPAddress

from apps.core import metrics
from apps.webhooks import signing
from apps.webhooks.models import Event, WebhookDelivery, WebhookSubscription
from apps.webhooks.tasks import delivery_attempt_task

logger = logging.getLogger(__name__)


def event_publish(*, organization, event: str, data: dict) -> list[WebhookDelivery]:
    """Queue `event` for every active subscription of the organization that wants it."""
    if event not in Event.values:
        raise ValueError(f"unknown webhook event {event!r}")
    subscriptions = [
        s for s in WebhookSubscription.objects.filter(organization=organization, active=True) if event in s.events
    ]
    if not subscriptions:
        return []
    event_id = uuid.uuid4()
    payload = {
        "id": str(event_id),
        "type": event,
        "created_at": timezone.now().isoformat(),
        "organization": {"id": organization.pk, "slug": organization.slug},
        "data": data,
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(organization=organization, subscription=s, event=event, event_id=event_id, payload=payload)
        for s in subscriptions
    )
    for delivery in deliveries:
        _enqueue(delivery)
    return deliveries


def _enqueue(delivery: WebhookDelivery, countdown: float = 0) -> None:
    delivery_id, organization_id = delivery.pk, delivery.organization_id
    transaction.on_commit(
        lambda: delivery_attempt_task.apply_async(
            (delivery_id,), {"organization_id": organization_id}, countdown=countdown
        )
    )


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def _http() -> requests_hardened.Manager:
    """Sessions that check the address a receiver's name resolves to when connecting
    (so a name cannot be pointed at an inside address after it was saved), and that
    never follow a redirect (which could lead inside just as well)."""
    return requests_hardened.Manager(
        requests_hardened.Config(
            ip_filter_enable=not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS,
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS),
        )
    )


def delivery_attempt(*, delivery_id: int) -> float | None:
    """POST the delivery once. Returns the seconds to wait before the next attempt, or
    None when there is nothing more to do (delivered, failed for good, or not pending)."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    if delivery.status != WebhookDelivery.Status.PENDING:
        return None
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "faces-webhooks/1",
        "X-Faces-Event": delivery.event,
        "X-Faces-Delivery": str(delivery.event_id),
        signing.HEADER: signing.signature_header(delivery.subscription.secret, body),
    }
    status, error, refused = None, "", False
    try:
        with _http().get_session() as session:
            response = session.post(delivery.subscription.url, data=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except InvalidIPAddress as address:
        error = (
            f"refused: {delivery.subscription.url} resolves to {address}, a private, loopback or link-local "
            "address (WEBHOOK_ALLOW_PRIVATE_TARGETS allows them)"
        )
        refused = True  # the same answer on every attempt
    except requests.RequestException as unreachable:
        error = str(unreachable)
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    delivery.response_status, delivery.error = status, error[:1000]
    delay = None
    if status is not None and 200 <= status < 300:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, delivery.last_attempt_at
    elif refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
        logger.warning("webhook delivery %s failed after %s attempts: %s", delivery.pk, delivery.attempts, error)
    else:
        delay = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1)
    delivery.save(update_fields=["attempts", "last_attempt_at", "response_status", "error", "status", "delivered_at"])
    outcome = "retrying" if delay is not None else delivery.status  # delivered or failed
    metrics.WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
    return delay


def delivery_retry(*, delivery: WebhookDelivery) -> None:
    """Send a failed delivery again (an admin action), with a fresh set of attempts."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.PENDING, attempts=0)
    _enqueue(delivery)
