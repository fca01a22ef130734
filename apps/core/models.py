from django.conf import settings
from django.db import models


class TenantOwned(models.Model):
    """A row that belongs to exactly one organization; the key is indexed."""

    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=True,
    )

    class Meta:
        abstract = True


class AuditEvent(TenantOwned):
    """Who did what, and when: admin changes, API keys, erasures, exports."""

    class Action(models.TextChoices):
        CREATED = "created"
        CHANGED = "changed"
        DELETED = "deleted"
        ERASED = "erased"
        API_KEY_CREATED = "api_key_created"
        API_KEY_REVOKED = "api_key_revoked"
        EXPORTED = "exported"
        RETENTION_PURGED = "retention_purged"
        CORRECTED = "corrected"
        STRANGER_PROMOTED = "stranger_promoted"
        STRANGER_DISMISSED = "stranger_dismissed"
        SIGNED_IN = "signed_in"
        SIGN_IN_FAILED = "sign_in_failed"
        SIGN_IN_LOCKED_OUT = "sign_in_locked_out"
        SIGN_IN_UNLOCKED = "sign_in_unlocked"
        SECOND_FACTOR_ADDED = "second_factor_added"
        SECOND_FACTOR_RESET = "second_factor_reset"
        RECOVERY_CODES_RENEWED = "recovery_codes_renewed"
        CONSENT_RECORDED = "consent_recorded"
        CONSENT_WITHDRAWN = "consent_withdrawn"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    # The actor: a user, an API key (its prefix), or the system (both empty).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    api_key_prefix = models.CharField(max_length=16, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target_type} {self.target_repr}"
