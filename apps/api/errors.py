"""One error shape for the whole API: {"error": {"code", "message", "field"}}."""

import logging

import kombu.exceptions
import redis.exceptions
from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import OUTAGE_RETRY_AFTER_SECONDS, ServiceError

logger = logging.getLogger(__name__)

# A lost database or broker is an outage, not a bug in the request: 503 with a time to
# retry after, in the API's error shape (a camera buffers and retries; a 500 would not
# say that waiting helps). The next request reconnects (CONN_HEALTH_CHECKS, kombu).
OUTAGES = {
    "database_unavailable": ((db.OperationalError, db.InterfaceError), "The database is not answering"),
    "broker_unavailable": (
        (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
        "The task broker is not answering",
    ),
}

DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_request",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "validation_error",
}


def error_response(code: str, message: str, status_code: int, field: str | None = None, headers=None) -> Response:
    return Response({"error": {"code": code, "message": message, "field": field}}, status=status_code, headers=headers)


def _first_validation_error(detail) -> tuple[str | None, str]:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        _, message = _first_validation_error(value)
        return (None if field == "non_field_errors" else field), message
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0])
    return None, str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return error_response(exc.code, exc.message, exc.status, exc.field, headers)
    for code, (classes, message) in OUTAGES.items():
        if isinstance(exc, classes):
            logger.warning("%s: %s", code, exc)
            headers = {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
            return error_response(code, f"{message}; try again shortly.", 503, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        return error_response(
            "image_too_large", f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.", 413
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_validation_error(exc.detail)
    else:
        field, message = None, str(getattr(exc, "detail", exc))
    headers = {k: v for k, v in response.items()}
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", "Api-Key")
    return error_response(code, message, response.status_code, field, headers)


def json_or_html(default_handler, code: str, message: str, status_code: int):
    """API paths answer in the API's error shape even outside DRF views (unknown URL, crash)."""

    def handler(request, *args, **kwargs):
        if request.path.startswith("/api/"):
            return JsonResponse({"error": {"code": code, "message": message, "field": None}}, status=status_code)
        return default_handler(request, *args, **kwargs)

    return handler


handler404 = json_or_html(defaults.page_not_found, "not_found", "Not found.", 404)
handler500 = json_or_html(defaults.server_error, "server_error", "Internal error; it has been logged.", 500)
