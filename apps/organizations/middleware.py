from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from apps.core.tenancy import tenant_context
from apps.organizations import signin
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


class SecondFactorMiddleware:
    """A signed-in member of an organization that requires a second factor who has not
    given one in this session reaches only the page that asks for it (or sets it up) and
    sign-out; the API answers 403 second_factor_required.
    After CurrentOrganizationMiddleware, whose memberships it reads."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            # Memberships are loaded already: most requests stop at the first test.
            signin.requires_second_factor(request.memberships)
            and not user.is_verified()
            and not request.path.startswith(self.open_paths())
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "error": {
                            "code": "second_factor_required",
                            "message": "Your organization requires a second factor: /accounts/second-factor/.",
                        }
                    },
                    status=403,
                )
            return redirect(f"{reverse('second-factor')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def open_paths() -> tuple[str, ...]:
        return (reverse("second-factor"), reverse("logout"), "/static/", "/healthz", "/metrics")
