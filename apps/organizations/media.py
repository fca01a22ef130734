"""Stored photos, frames and crops are biometric data: served only to the organization
that owns them (files live under org_<id>/), never as public static files."""

import mimetypes
import re

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from apps.organizations.models import Membership
from apps.organizations.services import api_key_authenticate

OWNER = re.compile(r"^org_(\d+)/")


def may_read(request, organization_id: int) -> bool:
    user = request.user
    if user.is_authenticated:
        return user.is_superuser or Membership.objects.filter(user=user, organization_id=organization_id).exists()
    keyword, _, raw_key = request.headers.get("Authorization", "").partition(" ")
    if keyword == "Api-Key":
        api_key = api_key_authenticate(raw_key)
        return api_key is not None and api_key.organization_id == organization_id
    return False


def serve(request, path: str):
    owner = OWNER.match(path)
    if owner is None or ".." in path.split("/") or not may_read(request, int(owner.group(1))):
        raise Http404("Not found.")
    if not default_storage.exists(path):
        raise Http404("Not found.")
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
