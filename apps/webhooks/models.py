import secrets
import uuid

from django.db import models

from apps.core.models import TenantOwned


def new_secret() -> str:
    return secrets.token_hex(32)


class Event(models.TextChoices):
    VISIT_STARTED = "visit.started"
    VISIT_ENDED = "visit.ended"
    STRANGER_SEEN = "stranger.seen"
    WATCHLIST_SEEN = "watchlist.seen"


class WebhookSubscription(TenantOwned):
    """An endpoint of the organization's that is told about some events, signed with
    its own secret (HMAC-SHA256; apps.webhooks.signing)."""

    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event types sent to this URL")
    # Kept in clear: the signature needs it, and the receiver holds the same value.
    secret = models.CharField(max_length=64, default=new_secret)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(TenantOwned):
    """One event sent (or being sent) to one subscription: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not delivered yet; retried with exponential backoff
        DELIVERED = "delivered"
        FAILED = "failed"  # every attempt failed

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=Event.choices)
    # The event's id, the same for every subscription: receivers deduplicate with it.
    event_id = models.UUIDField(default=uuid.uuid4)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription} ({self.status})"
