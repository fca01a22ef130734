from django.contrib import admin

from apps.core.admin_base import TenantAdmin, is_platform
from apps.core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(TenantAdmin):
    """The organization's audit log: owners only, read-only."""

    manager_roles = {"owner"}
    list_display = ["at", "action", "actor", "target_type", "target_repr"]
    list_filter = ["action"]
    search_fields = ["target_repr", "user__username", "api_key_prefix"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    @admin.display(description="by")
    def actor(self, event):
        if event.user_id:
            return event.user.get_username()
        return f"API key {event.api_key_prefix}" if event.api_key_prefix else "system"

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Only as part of deleting a whole organization, which the platform does.
        return is_platform(request)
