from django.contrib import admin

from apps.organizations.models import ApiKey, Camera, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "recognition_model", "detector", "match_threshold", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role"]
    list_filter = ["role"]


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "location"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "organization", "scopes", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "hashed_key", "last_used_at"]
