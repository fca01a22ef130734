from django.contrib import admin

from apps.core.admin_base import TenantAdmin, is_platform
from apps.gallery.admin import thumbnail
from apps.sightings import services
from apps.sightings.models import CheckIn, Correction, Sighting, StrangerProfile, Visit, WatchlistEntry


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


class ReadOnlyAdmin(TenantAdmin):
    """Made by recognition and changed through the report pages' actions, not by hand."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Visit)
class VisitAdmin(ReadOnlyAdmin):
    list_display = ["id", "person", "camera", "started_at", "ended_at", "frames", "confidence"]
    list_filter = ["camera"]
    search_fields = ["person__name"]


@admin.register(StrangerProfile)
class StrangerProfileAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "sightings_count", "first_seen", "last_seen", "person"]
    list_filter = ["status"]
    exclude = ["centroid"]


@admin.register(CheckIn)
class CheckInAdmin(ReadOnlyAdmin):
    """Check-ins at the kiosks, passed and refused: a refused one names whom the face
    looked like (a photo of whom was held up), for reception."""

    list_display = ["id", "started_at", "camera", "outcome", "reason", "person", "direction", "turn", "frame"]
    list_filter = ["outcome", "reason", "camera"]
    date_hierarchy = "started_at"
    exclude = ["image", "observations"]


@admin.register(Correction)
class CorrectionAdmin(ReadOnlyAdmin):
    list_display = ["id", "sighting", "from_person", "to_person", "user", "created_at"]


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(TenantAdmin):
    """Who is watched and why; additions, changes and removals go to the audit log
    (TenantAdmin), and the entry keeps who added it."""

    list_display = ["__str__", "person", "stranger", "added_by", "created_at", "last_seen", "last_face"]
    fields = ["person", "stranger", "reason", "added_by", "created_at", "last_seen"]
    readonly_fields = ["added_by", "created_at", "last_seen"]

    @admin.display(description="last seen as")
    def last_face(self, entry):
        return thumbnail(entry.last_sighting.crop, 48) if entry.last_sighting else "-"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        organization = obj.organization if is_platform(request) else request.organization
        entry = services.watchlist_add(
            organization=organization, person=obj.person, stranger=obj.stranger, reason=obj.reason, user=request.user
        )
        obj.pk = entry.pk
        obj.refresh_from_db()  # the admin goes on with the saved entry (its message, its log)

    def log_addition(self, request, obj, message):
        return admin.ModelAdmin.log_addition(self, request, obj, message)  # audited by the service

    def delete_model(self, request, obj):
        services.watchlist_remove(entry=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.watchlist_remove(entry=entry, user=request.user)

    def log_deletions(self, request, queryset):
        return admin.ModelAdmin.log_deletions(self, request, queryset)  # audited by the service
