"""One error shape for the whole API: {"error": {"code", "message", "field"}}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ServiceError

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
        return error_response(exc.code, exc.message, exc.status, exc.field)
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
