"""Idempotency-Key: a retried POST answers with what the first one made instead of
making it again.

The key's record is written in the same transaction as the object the request makes,
so the two exist together or not at all. A request that dies half-way (its database
connection terminated, its process killed) leaves nothing behind, and its retry simply
does the work. A request that died after its commit, before its answer reached the
client, is answered on retry from the object it made. A retry that arrives while the
first attempt is still running waits on the key's row until that attempt commits (or
rolls back), then is answered the same way: the object is made once.

The answer to a retry is the object's state now (a frame may be `done` by then), not a
copy of the first answer's bytes.
"""

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from apps.api.models import IdempotentRequest
from apps.core.errors import ServiceError

MAX_KEY_LENGTH = 200
REPLAYED_HEADER = {"Idempotent-Replayed": "true"}

Made = TypeVar("Made", bound=models.Model)


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for name in sorted(request.data.keys()):
        value = request.data[name]
        digest.update(name.encode())
        if hasattr(value, "chunks"):
            for chunk in value.chunks():
                digest.update(chunk)
            value.seek(0)
        else:
            digest.update(str(value).encode())
    digest.update(request.META.get("QUERY_STRING", "").encode())
    return digest.hexdigest()


def made_once(request, *, field: str, make: Callable[[], Made]) -> tuple[Made, bool]:
    """`make()` once per Idempotency-Key: the object it made and whether this request is
    a retry of an earlier one. `field` is the record's foreign key to that object.
    Without the header, `make()` simply runs."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return make(), False
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ServiceError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", field="Idempotency-Key")
    identity = {
        "organization": request.auth.organization,
        "operation": f"{request.method} {request.resolver_match.route}",
        "key": key,
    }
    fingerprint = _fingerprint(request)
    expired = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    with transaction.atomic():
        IdempotentRequest.objects.filter(**identity, created_at__lt=expired).delete()
        # A concurrent attempt with the same key holds its uncommitted row: this insert
        # waits for it, then finds the row it committed (or inserts, if it rolled back).
        record, created = IdempotentRequest.objects.get_or_create(**identity, defaults={"fingerprint": fingerprint})
        if record.fingerprint != fingerprint:
            raise ServiceError(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                field="Idempotency-Key",
            )
        if not created:
            return getattr(record, field), True
        made = make()
        setattr(record, field, made)
        record.save(update_fields=[field])
    return made, False
