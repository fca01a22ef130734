"""Request validation and response shapes; they also describe the API in OpenAPI."""

import base64
import binascii

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.errors import ImageTooLarge
from apps.core.urls import absolute_url
from apps.gallery import selectors as gallery_selectors
from apps.gallery.models import Consent, FaceImage, Person
from apps.organizations.models import Camera
from apps.recognition.models import Frame
from apps.sightings.attendance import PERIODS, attendance_range

# --- Input ----------------------------------------------------------------------------


class ImageInputSerializer(serializers.Serializer):
    """An image as a multipart file `image` or as JSON `image_base64`."""

    # A plain FileField: the image is checked by our decoder (format, byte and pixel
    # limits from the header), not by ImageField, which would decode it unbounded.
    image = serializers.FileField(required=False, help_text="JPEG, PNG or WebP (multipart)")
    image_base64 = serializers.CharField(required=False, help_text="The same, base64-encoded (JSON)")

    def validate(self, attrs):
        if ("image" in attrs) == ("image_base64" in attrs):
            raise serializers.ValidationError(
                {"image": "Send exactly one of image (multipart) or image_base64 (JSON)."}
            )
        limit = settings.API_MAX_IMAGE_BYTES
        if "image" in attrs:
            upload = attrs.pop("image")
            if upload.size > limit:
                raise ImageTooLarge(f"The image has {upload.size} bytes; the limit is {limit}.", field="image")
            attrs["image_bytes"] = upload.read()
        else:
            text = attrs.pop("image_base64")
            if len(text) * 3 // 4 > limit + 3:  # checked before decoding
                raise ImageTooLarge(f"The image is over the {limit}-byte limit.", field="image_base64")
            try:
                attrs["image_bytes"] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise serializers.ValidationError({"image_base64": "Not valid base64."}) from None
        return attrs


class FrameInputSerializer(ImageInputSerializer):
    camera = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    captured_at = serializers.DateTimeField(required=False)


class IdentifyInputSerializer(ImageInputSerializer):
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=10, default=3)


class VerifyInputSerializer(ImageInputSerializer):
    person = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class WaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(required=False, min_value=0, max_value=3600, default=0)


class SightingFilterSerializer(serializers.Serializer):
    person = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    group = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Its people only")
    camera = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    known = serializers.BooleanField(required=False, allow_null=True, default=None)
    min_similarity = serializers.FloatField(required=False, min_value=0, max_value=1)


class AttendanceFilterSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=PERIODS, required=False, default="day")
    person = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, default=None)
    group = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, default=None, help_text="Its people only"
    )
    camera = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, default=None)
    since = serializers.DateField(required=False, help_text="First day (default: this week's Monday)")
    until = serializers.DateField(required=False, help_text="Last day, included (default: today)")

    def validate(self, data):
        try:
            data["since"], data["until"] = attendance_range(
                organization=self.context["organization"], since=data.get("since"), until=data.get("until")
            )
        except ValueError as error:
            raise serializers.ValidationError({"until": str(error)}) from None
        return data


class PersonSearchSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, max_length=200)


# --- Resources ------------------------------------------------------------------------


class PersonSerializer(serializers.ModelSerializer):
    enrolled_photos = serializers.SerializerMethodField(help_text="Photos that passed enrollment")
    enrollment_strength = serializers.SerializerMethodField(
        help_text="none, weak (fewer enrolled photos than recommended: more of the person's sightings are missed) "
        "or strong"
    )

    class Meta:
        model = Person
        fields = ["id", "name", "external_id", "created_at", "enrolled_photos", "enrollment_strength", "consent"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"external_id": {"required": False}}

    consent = serializers.SerializerMethodField(help_text="given (a consent in force), withdrawn or none")

    def get_consent(self, person) -> str:
        return gallery_selectors.consent_state(person)

    def get_enrolled_photos(self, person) -> int:
        return gallery_selectors.enrolled_photos(person)

    def get_enrollment_strength(self, person) -> str:
        return gallery_selectors.enrollment_strength(gallery_selectors.enrolled_photos(person))


class CameraSerializer(serializers.ModelSerializer):
    class Meta:
        model = Camera
        fields = ["id", "name", "location", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"location": {"required": False}}


class FaceImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = FaceImage
        fields = ["id", "status", "reason", "detail", "warnings", "quality", "created_at", "processed_at"]


class FaceImageAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


# --- Results --------------------------------------------------------------------------


class BoxSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()


class QualitySerializer(serializers.Serializer):
    size = serializers.IntegerField()
    sharpness = serializers.FloatField()
    confidence = serializers.FloatField()
    yaw = serializers.FloatField(allow_null=True)
    roll = serializers.FloatField(allow_null=True)


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CandidateSerializer(serializers.Serializer):
    person = PersonRefSerializer()
    distance = serializers.FloatField()
    similarity = serializers.FloatField()


class RecognizedFaceSerializer(serializers.Serializer):
    box = BoxSerializer()
    person = PersonRefSerializer(allow_null=True)
    distance = serializers.FloatField(allow_null=True, help_text="Cosine distance to the nearest enrolled face")
    similarity = serializers.FloatField(allow_null=True, help_text="In [0, 1]; 0.5 at the threshold")
    threshold = serializers.FloatField()
    candidates = CandidateSerializer(many=True)
    quality = QualitySerializer()


class DetectedFaceSerializer(serializers.Serializer):
    box = BoxSerializer()
    quality = QualitySerializer()


class FacesSerializer(serializers.Serializer):
    faces = RecognizedFaceSerializer(many=True)


class DetectionsSerializer(serializers.Serializer):
    faces = DetectedFaceSerializer(many=True)


class VerificationSerializer(serializers.Serializer):
    verified = serializers.BooleanField()
    distance = serializers.FloatField()
    similarity = serializers.FloatField()
    threshold = serializers.FloatField()
    box = BoxSerializer()
    quality = QualitySerializer()


class FrameErrorSerializer(serializers.Serializer):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error")

    def to_representation(self, frame):
        return super().to_representation(frame) if frame.error_code else None


class FrameUrlField(serializers.URLField):
    def to_representation(self, frame):
        return absolute_url(reverse("frame", kwargs={"frame_id": frame.pk}), self.context.get("request"))


class FrameFacesField(serializers.ListField):
    child = RecognizedFaceSerializer()

    def get_attribute(self, frame):
        # A frame's sightings are stored with its done status, in one transaction: a
        # frame not done has none, and a POST's answer needs no query to say so.
        if frame.status != Frame.Status.DONE:
            return []
        return frame.sightings.select_related("person").order_by("box_x")


class FrameSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "processing", "done", "failed"])
    url = FrameUrlField(source="*")
    camera = serializers.IntegerField(source="camera_id", allow_null=True)
    captured_at = serializers.DateTimeField()
    error = FrameErrorSerializer(source="*", allow_null=True)
    timings_ms = serializers.DictField(source="timings", child=serializers.FloatField())
    faces = FrameFacesField()


class SightingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    frame = serializers.IntegerField(source="frame_id")
    camera = serializers.IntegerField(source="camera_id", allow_null=True)
    seen_at = serializers.DateTimeField()
    face = serializers.SerializerMethodField()
    crop_url = serializers.SerializerMethodField()
    visit = serializers.IntegerField(source="visit_id", allow_null=True)
    stranger = serializers.IntegerField(source="stranger_id", allow_null=True, help_text="Stranger profile")

    @extend_schema_field(RecognizedFaceSerializer)
    def get_face(self, sighting) -> dict:
        return RecognizedFaceSerializer(sighting).data

    def get_crop_url(self, sighting) -> str | None:
        return _crop_url(self.context["request"], sighting)


# --- Visits, strangers, corrections -----------------------------------------------------


def _crop_url(request, sighting) -> str | None:
    return absolute_url(sighting.crop.url, request) if sighting is not None and sighting.crop else None


class VisitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    person = serializers.SerializerMethodField()
    camera = serializers.IntegerField(source="camera_id", allow_null=True)
    first_seen = serializers.DateTimeField(source="started_at")
    last_seen = serializers.DateTimeField(source="ended_at")
    frames = serializers.IntegerField()
    confidence = serializers.FloatField(help_text="Mean similarity of the visit's sightings")
    best_sighting = serializers.IntegerField(source="best_sighting_id", allow_null=True)
    crop_url = serializers.SerializerMethodField()

    @extend_schema_field(PersonRefSerializer)
    def get_person(self, visit) -> dict:
        return {"id": visit.person_id, "name": visit.person.name}

    def get_crop_url(self, visit) -> str | None:
        return _crop_url(self.context["request"], visit.best_sighting)


@extend_schema_field(OpenApiTypes.DATETIME)
class LocalDateTimeField(serializers.Field):
    """A time as it was at the organization (attendance is in its time zone), with its offset."""

    def to_representation(self, value) -> str:
        return value.isoformat()


class AttendanceSerializer(serializers.Serializer):
    person = serializers.SerializerMethodField()
    period = serializers.DateField(help_text="The day, or the first day of the week (Monday) or month")
    days = serializers.IntegerField(help_text="Days present in the period")
    first_seen = LocalDateTimeField()
    last_seen = LocalDateTimeField()
    present_seconds = serializers.SerializerMethodField(help_text="The union of the visits, in seconds")
    cameras = serializers.ListField(child=serializers.CharField())
    checked_in = LocalDateTimeField(allow_null=True, help_text="The first kiosk check-in that passed its challenge")

    @extend_schema_field(PersonRefSerializer)
    def get_person(self, row) -> dict:
        return {"id": row.person_id, "name": row.person}

    def get_present_seconds(self, row) -> int:
        return round(row.present.total_seconds())


class WatchlistInputSerializer(serializers.Serializer):
    person = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="A person's id")
    stranger = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Or a stranger's")
    reason = serializers.CharField(max_length=2000, help_text="Why they are watched: sent with every event")


class WatchlistEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    person = serializers.SerializerMethodField()
    stranger = serializers.IntegerField(source="stranger_id", allow_null=True)
    reason = serializers.CharField()
    added_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    last_seen = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(PersonRefSerializer(allow_null=True))
    def get_person(self, entry) -> dict | None:
        return {"id": entry.person_id, "name": entry.person.name} if entry.person_id else None

    def get_added_by(self, entry) -> str | None:
        return entry.added_by.get_username() if entry.added_by else None


class StrangerStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "promoted", "dismissed"], required=False, default="open")


class StrangerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    sightings = serializers.IntegerField(source="sightings_count")
    person = serializers.IntegerField(source="person_id", allow_null=True, help_text="Set once promoted")
    crop_urls = serializers.SerializerMethodField()

    def get_crop_urls(self, profile) -> list[str]:
        samples = self.context["samples"].get(profile.pk, [])
        return [_crop_url(self.context["request"], sighting) for sighting in samples]


class ConsentInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Consent.Method.choices)
    purpose = serializers.CharField(max_length=300)
    given_at = serializers.DateTimeField(required=False, help_text="Default: now")


class ConsentSerializer(serializers.ModelSerializer):
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)
    document = serializers.BooleanField(source="document.name", help_text="Whether a document is attached")

    class Meta:
        model = Consent
        fields = ["id", "given_at", "method", "purpose", "recorded_by", "document", "withdrawn_at", "created_at"]


class ConsentWithdrawnSerializer(serializers.Serializer):
    consent = ConsentSerializer()
    erased = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows erased: photos, sightings, frames, check_in_photos"
    )


class PromoteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    consent = ConsentInputSerializer(
        required=False, help_text="The new person's consent, required where the organization requires consent"
    )


class CorrectionInputSerializer(serializers.Serializer):
    person = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, allow_null=True, help_text="The right person, or null for unknown"
    )


class CorrectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sighting = serializers.IntegerField(source="sighting_id")
    from_person = serializers.IntegerField(source="from_person_id", allow_null=True)
    to_person = serializers.IntegerField(source="to_person_id", allow_null=True)
    created_at = serializers.DateTimeField()
