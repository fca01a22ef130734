from apps.core.tenancy import tenant_context
from apps.organizations.models import Membership

SESSION_KEY = "organization_id"


def memberships_of(user):
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


class CurrentOrganizationMiddleware:
    """The signed-in user's current organization (one of theirs, chosen in the session),
    and the tenant context for the rest of the request.

    Platform superusers act without a tenant context: the explicit platform path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        # All of the user's memberships, read before the tenant context narrows the view.
        request.memberships = []
        user = request.user
        if user.is_authenticated:
            memberships = request.memberships = list(memberships_of(user))
            chosen = request.session.get(SESSION_KEY)
            membership = next((m for m in memberships if m.organization_id == chosen), None)
            membership = membership or (memberships[0] if memberships else None)
            if membership is not None:
                request.membership = membership
                request.organization = membership.organization
        if request.organization is not None and not user.is_superuser:
            with tenant_context(request.organization.pk):
                return self.get_response(request)
        return self.get_response(request)
