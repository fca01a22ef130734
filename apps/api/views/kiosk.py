"""The kiosk's check-ins, for a kiosk key (the kiosk:check-in scope alone, tied to one
camera): what the kiosk is, a check-in started on a frame, and the frames that follow
while the person turns their head as asked."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from apps.api.serializers import CameraSerializer, ImageInputSerializer, PersonRefSerializer
from apps.api.views.base import OrganizationView, validated
from apps.core.access import scoped
from apps.core.errors import NotFound
from apps.frames import services as frame_services
from apps.organizations.models import ApiKey
from apps.recognition.pipeline.presence import WINDOW_SECONDS
from apps.sightings.models import CheckIn


class KioskSerializer(serializers.Serializer):
    organization = serializers.CharField(source="organization.name")
    camera = CameraSerializer()
    challenge_seconds = serializers.FloatField(help_text="How long a person has to turn their head as asked")


class CheckInSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=CheckIn.Outcome.choices)
    reason = serializers.CharField(help_text="passed, or why the challenge refused it; empty while pending")
    direction = serializers.CharField(help_text="The head movement asked for: left or right, the person's own")
    frames = serializers.SerializerMethodField(help_text="Frames with the face so far")
    seconds_left = serializers.SerializerMethodField(help_text="Of the challenge, while pending")
    person = serializers.SerializerMethodField(help_text="Who checked in: only once passed; null for a stranger")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_frames(self, check_in) -> int:
        return len(check_in.observations)

    def get_seconds_left(self, check_in) -> float:
        if check_in.outcome != CheckIn.Outcome.PENDING:
            return 0.0
        return round(max(WINDOW_SECONDS - (timezone.now() - check_in.started_at).total_seconds(), 0.0), 2)

    @extend_schema_field(PersonRefSerializer(allow_null=True))
    def get_person(self, check_in) -> dict | None:
        # Who a refused face looked like is for reception, never for the kiosk's screen.
        if check_in.outcome != CheckIn.Outcome.PASSED or check_in.person_id is None:
            return None
        return {"id": check_in.person_id, "name": check_in.person.name}


class KioskView(OrganizationView):
    required_scope = ApiKey.Scope.KIOSK

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.auth.camera is None:  # api_key_create makes none such; an older row might be
            raise exceptions.PermissionDenied("A kiosk key must be tied to the kiosk's camera.")

    @property
    def camera(self):
        return self.request.auth.camera


class KioskInfoView(KioskView):
    @extend_schema(responses=KioskSerializer)
    def get(self, request):
        kiosk = {"organization": self.organization, "camera": self.camera, "challenge_seconds": WINDOW_SECONDS}
        return Response(KioskSerializer(kiosk).data)


class CheckInsView(KioskView):
    @extend_schema(
        request=ImageInputSerializer,
        responses={201: CheckInSerializer},
        description="Starts a check-in on the frame's largest face (422 no_face or face_not_frontal "
        "until there is one, looking at the camera), and asks for a head movement.",
    )
    def post(self, request):
        data = validated(ImageInputSerializer, request.data)
        check_in = frame_services.check_in_start(
            organization=self.organization, camera=self.camera, data=data["image_bytes"]
        )
        return Response(CheckInSerializer(check_in).data, status=status.HTTP_201_CREATED)


class CheckInFramesView(KioskView):
    @extend_schema(
        request=ImageInputSerializer,
        responses=CheckInSerializer,
        description="One more frame of a pending check-in; the answer says once it passed or was refused.",
    )
    def post(self, request, check_in_id):
        data = validated(ImageInputSerializer, request.data)
        # The kiosk's own camera's check-ins only: another kiosk's are as missing as another organization's.
        check_in = (
            scoped(CheckIn, self.organization)
            .filter(camera=self.camera, pk=check_in_id)
            .select_related("organization", "person")
            .first()
        )
        if check_in is None:
            raise NotFound("Check-in not found.")
        check_in = frame_services.check_in_frame(check_in=check_in, data=data["image_bytes"])
        return Response(CheckInSerializer(check_in).data)
