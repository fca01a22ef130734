from django.db import models
from pgvector.django import VectorField

from apps.core.models import TenantOwned


def crop_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/crops/{instance.seen_at:%Y/%m/%d}/{filename}"


class Sighting(TenantOwned):
    """One face in one frame: a known person, or nobody (person is null)."""

    frame = models.ForeignKey("recognition.Frame", on_delete=models.CASCADE, related_name="sightings")
    camera = models.ForeignKey("organizations.Camera", null=True, blank=True, on_delete=models.SET_NULL)
    seen_at = models.DateTimeField()
    # Erasing a person erases their sightings too: they are biometric data about them.
    person = models.ForeignKey("gallery.Person", null=True, blank=True, on_delete=models.CASCADE)
    # Distance to the nearest enrolled face (known or not), and the threshold used.
    distance = models.FloatField(null=True, blank=True)
    similarity = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    model_name = models.CharField(max_length=32)
    candidates = models.JSONField(default=list, blank=True)
    box_x = models.IntegerField()
    box_y = models.IntegerField()
    box_w = models.IntegerField()
    box_h = models.IntegerField()
    quality = models.JSONField(default=dict, blank=True)
    crop = models.ImageField(upload_to=crop_path, blank=True)
    embedding = VectorField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "seen_at"])]
        ordering = ["seen_at", "box_x"]
