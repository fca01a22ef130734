from django.contrib import admin

from apps.core.admin_base import TenantAdmin
from apps.gallery.admin import thumbnail
from apps.sightings.models import Sighting


@admin.register(Sighting)
class SightingAdmin(TenantAdmin):
    list_display = ["id", "face", "person", "camera", "seen_at", "distance", "similarity"]
    list_filter = ["camera", "person"]
    search_fields = ["person__name"]
    exclude = ["embedding"]
    readonly_fields = [
        "frame",
        "camera",
        "seen_at",
        "person",
        "distance",
        "similarity",
        "threshold",
        "model_name",
        "candidates",
        "quality",
        "crop",
    ]

    @admin.display(description="face")
    def face(self, sighting):
        return thumbnail(sighting.crop, 48)

    def has_add_permission(self, request, *args):
        return False
