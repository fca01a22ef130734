from dataclasses import dataclass

from rest_framework import authentication, exceptions

from apps.organizations.models import ApiKey, Organization
from apps.organizations.services import api_key_authenticate

# What a signed-in member may do with their session: send frames (the capture page) and
# read reports. Never gallery:write: changing the gallery stays with API keys and the admin.
SESSION_SCOPES = (ApiKey.Scope.FRAMES_WRITE.value, ApiKey.Scope.REPORTS_READ.value)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>`; request.auth is the ApiKey row."""

    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, raw_key = header.partition(" ")
        if keyword != self.keyword:
            return None
        api_key = api_key_authenticate(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword


@dataclass(frozen=True)
class SessionCredentials:
    """request.auth of a session request: what the API reads from an ApiKey, for the
    user's current organization, with SESSION_SCOPES and no camera."""

    user: object
    organization: Organization
    scopes: tuple[str, ...] = SESSION_SCOPES
    camera = None

    @property
    def organization_id(self) -> int:
        return self.organization.pk


class OrganizationSessionAuthentication(authentication.SessionAuthentication):
    """A signed-in member of an organization (the browser capture page), CSRF enforced as
    in DRF; acts for the organization the session has chosen (CurrentOrganizationMiddleware).
    Tried after the API key, so a request that carries a key is the key's."""

    def authenticate(self, request):
        result = super().authenticate(request)  # None, or (user, None) once the CSRF check passed
        if result is None:
            return None
        organization = getattr(request._request, "organization", None)
        if organization is None:
            return None  # signed in, but a member of no organization: not an API caller
        return (result[0], SessionCredentials(user=result[0], organization=organization))
