from django.db import models

from apps.core.models import TenantOwned


class IdempotentRequest(TenantOwned):
    """The first answer to a request sent with an Idempotency-Key, replayed on retries."""

    key = models.CharField(max_length=200)
    # Method and route: the same key may be used on different operations.
    operation = models.CharField(max_length=200)
    # Hash of the request's content: the same key with other content is a client error.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "operation", "key"], name="one_answer_per_idempotency_key")
        ]
