"""One view per operation; each validates input, calls a service, shapes the answer."""

from django.conf import settings
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api import serializers
from apps.core.access import get_for_organization, scoped
from apps.core.errors import ImageTooLarge
from apps.gallery import services as gallery_services
from apps.gallery.models import Person
from apps.organizations.models import ApiKey, Camera
from apps.recognition import services as recognition_services
from apps.recognition.models import Frame


def read_image(validated: dict) -> bytes:
    upload = validated["image"]
    if upload.size > settings.API_MAX_IMAGE_BYTES:
        raise ImageTooLarge(
            f"The image has {upload.size} bytes; the limit is {settings.API_MAX_IMAGE_BYTES}.", field="image"
        )
    return upload.read()


class OrganizationView(APIView):
    @property
    def organization(self):
        return self.request.auth.organization


class PeopleView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    def get(self, request):
        people = scoped(Person, self.organization).order_by("name", "pk")
        return Response(serializers.PersonSerializer(people, many=True).data)

    def post(self, request):
        data = serializers.PersonCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        person = gallery_services.person_create(organization=self.organization, **data.validated_data)
        return Response(serializers.PersonSerializer(person).data, status=status.HTTP_201_CREATED)


class PersonFacesView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE
    parser_classes = [MultiPartParser, FormParser]

    def get(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        faces = person.face_images.order_by("pk")
        return Response(serializers.FaceImageSerializer(faces, many=True).data)

    def post(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        data = serializers.ImageUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        face_image = gallery_services.face_image_add(person=person, data=read_image(data.validated_data))
        return Response({"id": face_image.pk, "status": face_image.status}, status=status.HTTP_202_ACCEPTED)


class FramesView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE
    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        wait = serializers.WaitSerializer(data=request.query_params)
        wait.is_valid(raise_exception=True)
        data = serializers.FrameUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        camera = None
        if "camera" in data.validated_data:
            camera = get_for_organization(Camera, self.organization, data.validated_data["camera"], field="camera")
        elif request.auth.camera_id:
            camera = request.auth.camera
        frame = recognition_services.frame_create(
            organization=self.organization,
            data=read_image(data.validated_data),
            camera=camera,
            captured_at=data.validated_data.get("captured_at"),
        )
        if wait.validated_data["wait"] > 0:
            frame = recognition_services.frame_wait(frame=frame, timeout=wait.validated_data["wait"])
        body = serializers.frame_representation(frame, request)
        finished = frame.status in (Frame.Status.DONE, Frame.Status.FAILED)
        return Response(body, status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED)


class FrameDetailView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    def get(self, request, frame_id):
        frame = get_for_organization(Frame, self.organization, frame_id)
        return Response(serializers.frame_representation(frame, request))
