from rest_framework import permissions

from apps.api.authentication import SessionCredentials


class HasOrganization(permissions.BasePermission):
    """The request carries an organization's API key, or a member's session
    (SessionCredentials), with the scope the view needs (`required_scope` on the view;
    none means any valid credentials)."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        credentials = request.auth
        if credentials is None:
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None or scope in credentials.scopes:
            return True
        if isinstance(credentials, SessionCredentials):
            self.message = "A signed-in session may only send frames and read reports; this needs an API key."
        return False
