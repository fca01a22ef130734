from django.db import models

from apps.core.models import TenantOwned


def frame_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/frames/{instance.received_at:%Y/%m/%d}/{filename}"


class Frame(TenantOwned):
    """An uploaded frame and the state of its recognition."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    camera = models.ForeignKey("organizations.Camera", null=True, blank=True, on_delete=models.SET_NULL)
    image = models.ImageField(upload_to=frame_path)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    captured_at = models.DateTimeField()
    received_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Milliseconds per stage: decode, detect, embed, match, write.
    timings = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"Frame #{self.pk} ({self.status})"
