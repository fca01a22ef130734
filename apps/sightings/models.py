from django.conf import settings
from django.db import models
from pgvector.django import VectorField

from apps.core.models import TenantOwned


def crop_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/crops/{instance.seen_at:%Y/%m/%d}/{filename}"


class Visit(TenantOwned):
    """Consecutive sightings of one person at one camera, no more than the organization's
    visit gap apart: "who came, where and when", instead of one row per frame."""

    person = models.ForeignKey("gallery.Person", on_delete=models.CASCADE, related_name="visits")
    camera = models.ForeignKey("organizations.Camera", null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    frames = models.PositiveIntegerField(default=0)
    # Its faces (a frame may hold two of one person); the weight of `confidence` when a
    # new face is added without reading the others (services.visit_add).
    sightings_count = models.PositiveIntegerField(default=0)
    # Mean similarity of its sightings: one doubtful frame among many good ones counts little.
    confidence = models.FloatField(default=0.0)
    best_sighting = models.ForeignKey("Sighting", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set once nobody was seen for the gap after ended_at, and visit.ended announced.
    closed = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["ended_at"], condition=models.Q(closed=False), name="visit_open"),
            models.Index(fields=["organization", "started_at"]),
            models.Index(fields=["organization", "person", "started_at"]),
            models.Index(fields=["organization", "camera", "started_at"]),
            # visit_assign's lookup
            models.Index(fields=["organization", "person", "camera", "ended_at"]),
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.person} at {self.camera or 'no camera'}, {self.started_at:%Y-%m-%d %H:%M}"


class StrangerProfile(TenantOwned):
    """Unknown faces that look like the same person, across cameras and days."""

    class Status(models.TextChoices):
        OPEN = "open"
        PROMOTED = "promoted"  # became a person; see `person`
        DISMISSED = "dismissed"  # still collects its faces, but is no longer shown as to do

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    model_name = models.CharField(max_length=32)
    # The normalized mean of its faces' embeddings: new unknown faces join the nearest
    # profile within the organization's threshold.
    centroid = VectorField()
    sightings_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Erasing the person it became erases the profile (its centroid is their face).
    person = models.ForeignKey("gallery.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "status", "last_seen"])]
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"Stranger #{self.pk}"


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
    # The enrolled photo nearest to this face.
    matched_face = models.ForeignKey(
        "gallery.FaceImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    box_x = models.IntegerField()
    box_y = models.IntegerField()
    box_w = models.IntegerField()
    box_h = models.IntegerField()
    quality = models.JSONField(default=dict, blank=True)
    quality_score = models.FloatField(default=0.0)
    crop = models.ImageField(upload_to=crop_path, blank=True)
    embedding = VectorField(null=True, blank=True)
    visit = models.ForeignKey(Visit, null=True, blank=True, on_delete=models.SET_NULL, related_name="sightings")
    stranger = models.ForeignKey(
        StrangerProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="sightings"
    )

    class Meta:
        indexes = [
            models.Index(fields=["organization", "seen_at"]),
            models.Index(fields=["organization", "person", "seen_at"]),
            models.Index(fields=["organization", "camera", "seen_at"]),
            models.Index(
                fields=["organization", "seen_at"], condition=models.Q(person__isnull=True), name="sighting_unknown"
            ),
            models.Index(fields=["crop"]),  # the orphaned-file sweep looks crops up by name
        ]
        ordering = ["seen_at", "box_x"]

    @property
    def box(self) -> dict:
        return {"x": self.box_x, "y": self.box_y, "w": self.box_w, "h": self.box_h}


class Correction(TenantOwned):
    """A user's "not this person": the sighting moved from one person to another, or to
    unknown. Its face then counts against `from_person` when matching (a negative
    example) and among the impostor pairs when calibrating."""

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="corrections")
    # Erasing either person erases what the correction says about them.
    from_person = models.ForeignKey(
        "gallery.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="corrections_away"
    )
    to_person = models.ForeignKey(
        "gallery.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="corrections_to"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "from_person"])]
        ordering = ["-created_at"]


class WatchlistEntry(TenantOwned):
    """Someone the organization wants to be told about: a person, or a stranger profile.
    A sighting of them raises `watchlist.seen` (a webhook) and a row on the dashboard;
    at most once per visit gap, so a person standing at a camera is one event."""

    person = models.ForeignKey(
        "gallery.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="watchlist_entries"
    )
    stranger = models.ForeignKey(
        StrangerProfile, null=True, blank=True, on_delete=models.CASCADE, related_name="watchlist_entries"
    )
    reason = models.TextField(help_text="Why they are watched: shown with every event")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True, editable=False)
    last_sighting = models.ForeignKey(
        Sighting, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        verbose_name_plural = "watchlist"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(person__isnull=False, stranger__isnull=True)
                | models.Q(person__isnull=True, stranger__isnull=False),
                name="watchlist_entry_is_a_person_or_a_stranger",
            ),
            models.UniqueConstraint(fields=["person"], name="one_watchlist_entry_per_person"),
            models.UniqueConstraint(fields=["stranger"], name="one_watchlist_entry_per_stranger"),
        ]

    def __str__(self) -> str:
        return f"{self.person or self.stranger}: {self.reason[:60]}"


def check_in_path(instance, filename: str) -> str:
    return f"org_{instance.organization_id}/check-ins/{instance.started_at:%Y/%m/%d}/{filename}"


class CheckIn(TenantOwned):
    """A check-in at a kiosk: a face seen, a head movement asked for (the presence
    challenge, recognition.pipeline.presence) and its outcome. A passed one is recorded
    as a frame of the kiosk's camera, so it becomes a sighting and a visit like any
    other and counts in attendance; a refused one records only that it was refused."""

    class Outcome(models.TextChoices):
        PENDING = "pending"  # the challenge is under way
        PASSED = "passed"
        REFUSED = "refused"

    camera = models.ForeignKey("organizations.Camera", null=True, on_delete=models.SET_NULL, related_name="+")
    direction = models.CharField(max_length=8)  # asked for: "left" or "right", the person's own
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    # Why: passed, or the challenge's reason (too_few_frames, not_frontal, another_face,
    # no_turn, wrong_way, too_slow), or abandoned (the kiosk started another).
    reason = models.CharField(max_length=32, blank=True)
    turn = models.FloatField(null=True, blank=True)  # the yaw change in the asked direction
    # The face's box and yaw in each frame of the challenge: [seconds, x, y, size, yaw].
    observations = models.JSONField(default=list, blank=True)
    # Who the face at the start is (null: nobody enrolled). Shown only once it passed;
    # a refused one keeps it for reception (a photo of whom was held up).
    person = models.ForeignKey("gallery.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    distance = models.FloatField(null=True, blank=True)
    similarity = models.FloatField(null=True, blank=True)
    # The challenge's first frame, held until the outcome: it becomes `frame` if passed.
    image = models.ImageField(upload_to=check_in_path, blank=True)
    frame = models.ForeignKey("recognition.Frame", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "started_at"]),
            models.Index(fields=["organization", "person", "started_at"]),
            models.Index(fields=["camera", "outcome"]),
            models.Index(fields=["image"]),  # the orphaned-file sweep looks files up by name
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Check-in #{self.pk} ({self.outcome})"
