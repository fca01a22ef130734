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
    # The worker process that last took it, as host:pid (frames_requeue_orphaned).
    worker = models.CharField(max_length=255, blank=True)
    # Milliseconds per stage: decode, detect, embed, match, write.
    timings = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        # image: the orphaned-file sweep looks frames up by their file's name.
        indexes = [models.Index(fields=["status", "started_at"]), models.Index(fields=["image"])]

    def __str__(self) -> str:
        return f"Frame #{self.pk} ({self.status})"


def calibration_plot_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/calibration/{filename}"


class Calibration(TenantOwned):
    """A threshold derived from an organization's target FPIR and its gallery
    (pipeline.calibration.calibrate_gallery), with the error rates to expect."""

    model_name = models.CharField(max_length=32)
    target_fpir = models.FloatField()
    threshold = models.FloatField()
    people = models.PositiveIntegerField()
    photos = models.PositiveIntegerField()
    impostor_pairs = models.PositiveBigIntegerField()
    # Where the impostor tail came from: "reference" or "gallery and reference".
    source = models.CharField(max_length=32)
    # Expected at the threshold: strangers accepted, enrolled people missed (None: unknown).
    expected_fpir = models.FloatField()
    expected_fnir = models.FloatField(null=True, blank=True)
    # growth (expected rates as the gallery grows), corrections counted.
    summary = models.JSONField(default=dict)
    plot = models.ImageField(upload_to=calibration_plot_path)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model_name} threshold {self.threshold:.4f} ({self.created_at:%Y-%m-%d %H:%M})"
