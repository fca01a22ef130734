"""The one way to make a link absolute."""

from django.conf import settings


def absolute_url(path: str, request=None) -> str:
    """`path` as a full URL: on the host a request came to, or, with no request (webhook
    payloads sent by a worker), on PUBLIC_BASE_URL."""
    return request.build_absolute_uri(path) if request is not None else f"{settings.PUBLIC_BASE_URL}{path}"
