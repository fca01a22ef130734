"""Idempotency-Key: a retried POST returns the first answer instead of doing the work twice."""

import functools
import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.api.models import IdempotentRequest
from apps.core.errors import Conflict, ServiceError

MAX_KEY_LENGTH = 200


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


def idempotent(view_method):
    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view_method(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ServiceError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", field="Idempotency-Key")
        organization = request.auth.organization
        operation = f"{request.method} {request.resolver_match.route}"
        fingerprint = _fingerprint(request)
        expired = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        IdempotentRequest.objects.filter(
            organization=organization, operation=operation, key=key, created_at__lt=expired
        ).delete()
        try:
            record, created = IdempotentRequest.objects.get_or_create(
                organization=organization, operation=operation, key=key, defaults={"fingerprint": fingerprint}
            )
        except IntegrityError:  # a concurrent first request won the race
            created, record = (
                False,
                IdempotentRequest.objects.get(organization=organization, operation=operation, key=key),
            )
        if not created:
            if record.fingerprint != fingerprint:
                raise ServiceError(
                    "This Idempotency-Key was used with a different request.",
                    code="idempotency_key_reused",
                    field="Idempotency-Key",
                )
            if record.status_code is None:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed.", code="idempotency_in_progress"
                )
            return Response(record.body, status=record.status_code, headers={"Idempotent-Replayed": "true"})
        try:
            response = view_method(view, request, *args, **kwargs)
        except BaseException:
            record.delete()
            raise
        if 200 <= response.status_code < 300:
            # Stored as rendered, so that a replay is byte-for-byte the first answer.
            record.status_code, record.body = response.status_code, json.loads(JSONRenderer().render(response.data))
            record.save(update_fields=["status_code", "body"])
        else:
            record.delete()
        return response

    return wrapper
