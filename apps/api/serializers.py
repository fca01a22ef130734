from rest_framework import serializers

from apps.gallery.models import FaceImage, Person


class PersonCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "name", "external_id", "created_at"]


class FaceImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = FaceImage
        fields = ["id", "status", "reason", "detail", "warnings", "quality", "created_at", "processed_at"]


class ImageUploadSerializer(serializers.Serializer):
    # A plain FileField: the image is validated by our decoder (format and limits),
    # not by Django's ImageField, which would decode it without a pixel limit.
    image = serializers.FileField()


class FrameUploadSerializer(ImageUploadSerializer):
    camera = serializers.IntegerField(required=False, min_value=1)
    captured_at = serializers.DateTimeField(required=False)


class WaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(required=False, min_value=0, default=0)


def frame_representation(frame, request) -> dict:
    sightings = list(frame.sightings.select_related("person").order_by("box_x"))
    return {
        "id": frame.pk,
        "status": frame.status,
        "url": request.build_absolute_uri(f"/api/v1/frames/{frame.pk}/"),
        "camera": frame.camera_id,
        "captured_at": frame.captured_at,
        "error": {"code": frame.error_code, "message": frame.error} if frame.error_code else None,
        "timings_ms": frame.timings,
        "faces": [
            {
                "box": {"x": s.box_x, "y": s.box_y, "w": s.box_w, "h": s.box_h},
                "person": {"id": s.person.pk, "name": s.person.name} if s.person else None,
                "distance": s.distance,
                "similarity": s.similarity,
                "threshold": s.threshold,
                "candidates": s.candidates,
                "quality": s.quality,
            }
            for s in sightings
        ],
    }
