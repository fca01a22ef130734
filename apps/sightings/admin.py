from django.contrib import admin

from apps.sightings.models import Sighting


@admin.register(Sighting)
class SightingAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "camera", "seen_at", "person", "distance", "similarity"]
    exclude = ["embedding"]
