from rest_framework import permissions


class HasOrganization(permissions.BasePermission):
    """The request carries an organization's API key with the scope the view needs
    (`required_scope` on the view; none means any valid key)."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if api_key is None:
            return False
        scope = getattr(view, "required_scope", None)
        return scope is None or scope in api_key.scopes
