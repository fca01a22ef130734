from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField

from apps.core.models import TenantOwned


def face_image_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/gallery/{instance.person_id}/{filename}"


class Person(TenantOwned):
    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    groups = models.ManyToManyField("Group", through="GroupMember", related_name="people", blank=True)

    class Meta:
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name


def consent_document_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/consent/{instance.person_id}/{filename}"


class Consent(TenantOwned):
    """A person's consent to the processing of their face: given when, how, for what, who
    recorded it, and when it was withdrawn. Kept when their biometric data is erased."""

    class Method(models.TextChoices):
        FORM = "form", "form (on screen)"
        PAPER = "paper", "signed paper"
        CONTRACT = "contract", "contract"
        OTHER = "other", "other"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="consents")
    given_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=16, choices=Method.choices)
    purpose = models.CharField(max_length=300, help_text="What the face is used for, e.g. 'attendance at the office'.")
    document = models.FileField(upload_to=consent_document_path, blank=True, help_text="The signed form, optional.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-given_at"]

    def __str__(self) -> str:
        state = f"withdrawn {self.withdrawn_at:%Y-%m-%d}" if self.withdrawn_at else "given"
        return f"{self.person}: {self.get_method_display()}, {self.given_at:%Y-%m-%d} ({state})"


class Group(TenantOwned):
    """People who belong together: a department, a class, a shift. Reports, attendance
    and the dashboard filter by it."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="one_group_name_per_organization")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupMember(TenantOwned):
    """A person in a group: a row of the organization's own (row-level security), unlike
    Django's implicit many-to-many table."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="group_memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "person"], name="one_membership_per_group")]

    def __str__(self) -> str:
        return f"{self.person} in {self.group}"


class FaceImage(TenantOwned):
    """An enrollment photo of a person."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ENROLLED = "enrolled"
        REJECTED = "rejected"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="face_images")
    image = models.ImageField(upload_to=face_image_path)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Machine-readable code (no_face, model_unavailable, ...) and a sentence for people.
    reason = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    # Recorded, not blocking: [{"code": "near_duplicate" | "closer_to_other_person", "message": ...}]
    warnings = models.JSONField(default=list, blank=True)
    # The measured quality of the enrolled face (size, sharpness, confidence, yaw, roll).
    quality = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When it was last sent to a worker, and how many times a worker began enrolling it:
    # a photo still pending long after is queued again, up to RECOGNITION_MAX_ATTEMPTS.
    queued_at = models.DateTimeField(null=True, blank=True)
    # A default in the database too: rows written by COPY (the benchmark's galleries) start at 0.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The photo was cut down to its face after enrollment (the organization keeps faces only).
    face_only = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [
            models.Index(fields=["image"]),  # the orphaned-file sweep looks photos up by name
            # The stale-photo sweep reads the pending ones.
            models.Index(fields=["queued_at"], name="gallery_faceimage_pending", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.person} #{self.pk} ({self.status})"


class FaceEmbedding(TenantOwned):
    """One face of an enrollment photo, embedded by one model."""

    face_image = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="embeddings")
    # Denormalized from face_image so that 1:K matching needs no join.
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=32)
    dimensions = models.PositiveSmallIntegerField()
    detector = models.CharField(max_length=32)
    embedding = VectorField()
    box_x = models.IntegerField()
    box_y = models.IntegerField()
    box_w = models.IntegerField()
    box_h = models.IntegerField()
    quality = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["face_image", "model_name"], name="one_embedding_per_photo_and_model")
        ]
        indexes = [models.Index(fields=["organization", "model_name"])]


def import_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/imports/{filename}"


class GalleryImport(TenantOwned):
    """A zip of photos, one folder per person, imported in the background."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    archive = models.FileField(upload_to=import_path)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    people_created = models.PositiveIntegerField(default=0)
    photos_added = models.PositiveIntegerField(default=0)
    # [{"file": ..., "error": ...}] for entries that were skipped
    problems = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.status}, {self.processed}/{self.total})"


class GalleryReembed(TenantOwned):
    """A change of the organization's model: every enrolled photo embedded again with
    the new model in the background. Matching keeps the old model until every photo
    has its new embedding, then switches at once; the old embeddings go after that."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    model_name = models.CharField(max_length=32)
    previous_model = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # [{"face_image": id, "message": ...}]: photos the new model found no face in.
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "model change"

    def __str__(self) -> str:
        return f"{self.previous_model} → {self.model_name} ({self.status}, {self.processed}/{self.total})"
