"""The browser capture page: the camera of a signed-in member's browser sends frames to
the API (POST /api/v1/frames/) with their session, or with an API key typed in the page,
and draws who was recognized over the live video."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from apps.core.access import scoped
from apps.organizations.models import Camera

RATES = [0.5, 1, 2, 5]  # frames per second; one request is in flight at a time anyway
DEFAULT_RATE = 1


@login_required
@ensure_csrf_cookie
def capture(request):
    if request.organization is None:
        raise PermissionDenied("You are not a member of any organization.")
    cameras = scoped(Camera, request.organization).order_by("name")
    return render(request, "capture/capture.html", {"rates": RATES, "default_rate": DEFAULT_RATE, "cameras": cameras})


def kiosk(request):
    """The kiosk (/kiosk/): a full-screen check-in page for a tablet at the door. It needs
    no session: it acts with a kiosk key (kiosk:check-in, tied to one camera), entered
    once on the device and kept in its local storage."""
    return render(request, "kiosk/kiosk.html")
