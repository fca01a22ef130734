from django.contrib import admin

from apps.recognition.models import Frame


@admin.register(Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "camera", "status", "captured_at", "attempts", "error_code"]
    list_filter = ["status"]
