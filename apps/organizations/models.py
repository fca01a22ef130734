import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import TenantOwned
from apps.recognition.pipeline import catalog

MODEL_CHOICES = [(name, name) for name in catalog.MODELS]
DETECTOR_CHOICES = [(name, name) for name in catalog.DETECTORS]


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a time zone (use an IANA name such as Europe/Paris).") from None


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    recognition_model = models.CharField(max_length=32, choices=MODEL_CHOICES)
    detector = models.CharField(max_length=32, choices=DETECTOR_CHOICES)
    # The share of strangers the organization accepts being called someone (FPIR);
    # empty: RECOGNITION_TARGET_FPIR. The threshold is derived from it for the gallery.
    target_fpir = models.FloatField(null=True, blank=True)
    # Thresholds per model derived from the target for today's gallery, {"Dlib": 0.061},
    # written by the background calibration (frames.services.calibration.calibration_run).
    calibrated_thresholds = models.JSONField(default=dict, blank=True, editable=False)
    # Explicit cosine-distance thresholds per model, set by hand: they override the target.
    match_thresholds = models.JSONField(default=dict, blank=True)
    # Empty: RECOGNITION_MATCH_MARGIN.
    match_margin = models.FloatField(null=True, blank=True)
    # Retention: sightings (and their frames and crops) of known people, and of unknown
    # faces, are purged after this many days; empty keeps them.
    sighting_retention_days = models.PositiveIntegerField(null=True, blank=True, default=90)
    unknown_retention_days = models.PositiveIntegerField(null=True, blank=True, default=30)
    # Sightings of a person at a camera at most this far apart belong to one visit.
    visit_gap_seconds = models.PositiveIntegerField(default=60)
    # Where the organization's days begin and end (attendance), an IANA name.
    time_zone = models.CharField(max_length=64, default=default_time_zone, validators=[validate_time_zone])

    # Every member signs in with a second factor (an authenticator app's code, or a
    # recovery code); a member without one sets it up before reaching anything else.
    class EnrollmentPhotos(models.TextChoices):
        ORIGINAL = "original", "keep the original photos"
        FACE_ONLY = "face_only", "keep only the face (cut out after enrollment)"

    # What is kept of an enrollment photo once enrolled: the photo as uploaded, or only the
    # face with room around it (images.face_only), from which a model change embeds again.
    enrollment_photos = models.CharField(
        max_length=16,
        choices=EnrollmentPhotos.choices,
        default=EnrollmentPhotos.ORIGINAL,
        help_text="Face only: after enrollment the photo is replaced by its face (the rest of the picture is "
        "deleted); a model change embeds the faces again.",
    )
    # A photo is enrolled only for a person whose consent is on record (and not withdrawn).
    require_consent = models.BooleanField(
        default=False,
        help_text="Enroll photos only of people whose consent is recorded; withdrawing it erases their biometric data.",
    )
    require_second_factor = models.BooleanField(
        default=False,
        help_text="Every member of this organization signs in with a second factor (an authenticator app).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def threshold_for(self, model_name: str) -> float:
        for source in (self.match_thresholds, self.calibrated_thresholds):
            if source.get(model_name) is not None:
                return float(source[model_name])
        return catalog.model_spec(model_name).default_threshold

    def threshold_source_for(self, model_name: str) -> str:
        """explicit (set by hand, overriding the target), calibrated or default."""
        if self.match_thresholds.get(model_name) is not None:
            return "explicit"
        return "calibrated" if self.calibrated_thresholds.get(model_name) is not None else "default"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def threshold(self) -> float:
        return self.threshold_for(self.recognition_model)

    @property
    def fpir_target(self) -> float:
        return settings.RECOGNITION_TARGET_FPIR if self.target_fpir is None else self.target_fpir

    @property
    def margin(self) -> float:
        return settings.RECOGNITION_MATCH_MARGIN if self.match_margin is None else self.match_margin


class Membership(TenantOwned):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        VIEWER = "viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_user_and_org")]


class Camera(TenantOwned):
    name = models.CharField(max_length=200)
    location = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="camera_name_unique_in_org")]

    def __str__(self) -> str:
        return self.name


class ApiKey(TenantOwned):
    class Scope(models.TextChoices):
        FRAMES_WRITE = "frames:write"
        GALLERY_WRITE = "gallery:write"
        REPORTS_READ = "reports:read"
        # A kiosk's key: check-ins at its one camera, nothing else (api_key_create).
        KIOSK = "kiosk:check-in"

    name = models.CharField(max_length=200, blank=True)
    # The visible part of the key, used to find the row; the secret is only hashed.
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=128)
    scopes = models.JSONField(default=list)
    camera = models.ForeignKey(Camera, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"
