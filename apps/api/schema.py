"""OpenAPI details drf-spectacular cannot infer: the API-key and session schemes, and
the one error shape on every operation."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_STATUSES = {
    "400": "Invalid input",
    "401": "Missing or invalid API key",
    "403": "The API key lacks the scope",
    "404": "Not found (or another organization's)",
    "405": "Method not allowed",
    "409": "Conflict",
    "413": "Image over the byte or pixel limit",
    "415": "Unsupported media type",
    "422": "No usable face",
    "429": "Throttled or queue full (see Retry-After)",
    "503": "Model, worker, database or broker unavailable (see Retry-After)",
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
            },
        }
    },
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`",
        }


class OrganizationSessionScheme(SessionScheme):
    """The capture page's session (a signed-in member, CSRF enforced), as DRF's own."""

    target_class = "apps.api.authentication.OrganizationSessionAuthentication"
    priority = 0


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result
