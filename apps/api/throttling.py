from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from apps.api.authentication import SessionCredentials


class SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from settings on each request (DRF's own reads it once, at import)."""

    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting)


class ApiKeyRateThrottle(SettingsRateThrottle):
    """Requests per API key, or per user for a signed-in session (API_RATE_PER_KEY)."""

    scope = "api_key"
    rate_setting = "API_RATE_PER_KEY"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        if isinstance(request.auth, SessionCredentials):
            ident = f"user-{request.auth.user.pk}"  # a string: never one of the keys' ids
        else:
            ident = request.auth.pk
        return self.cache_format % {"scope": self.scope, "ident": ident}


class OrganizationRateThrottle(SettingsRateThrottle):
    """Requests per organization, all its keys and sessions together (API_RATE_PER_ORGANIZATION)."""

    scope = "organization"
    rate_setting = "API_RATE_PER_ORGANIZATION"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.organization_id}
