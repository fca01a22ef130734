from django.contrib import admin

from apps.core.admin_base import TenantAdmin
from apps.recognition.models import Frame


@admin.register(Frame)
class FrameAdmin(TenantAdmin):
    list_display = ["id", "camera", "status", "captured_at", "attempts", "error_code", "organization"]
    list_filter = ["status", "camera"]
    readonly_fields = [
        "camera",
        "image",
        "status",
        "captured_at",
        "received_at",
        "started_at",
        "finished_at",
        "attempts",
        "timings",
        "error_code",
        "error",
    ]

    def has_add_permission(self, request, *args):
        return False
