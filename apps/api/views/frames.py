"""Frames and synchronous recognition: identify, verify, detect."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.api import serializers
from apps.api.idempotency import REPLAYED_HEADER, made_once
from apps.api.views.base import (
    IDEMPOTENCY_HEADER,
    OrganizationView,
    validated,
)
from apps.core.access import get_for_organization
from apps.frames import services as recognition_services
from apps.gallery.models import Person
from apps.organizations.models import ApiKey, Camera
from apps.recognition.models import Frame


class FramesView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    @extend_schema(
        request=serializers.FrameInputSerializer,
        parameters=[serializers.WaitSerializer, IDEMPOTENCY_HEADER],
        responses={200: serializers.FrameSerializer, 202: serializers.FrameSerializer},
    )
    def post(self, request):
        wait = validated(serializers.WaitSerializer, request.query_params)["wait"]
        data = validated(serializers.FrameInputSerializer, request.data)
        camera = request.auth.camera
        if "camera" in data:
            camera = get_for_organization(Camera, self.organization, data["camera"], field="camera")
        frame, replayed = made_once(
            request,
            field="frame",
            make=lambda: recognition_services.frame_create(
                organization=self.organization,
                data=data["image_bytes"],
                camera=camera,
                captured_at=data.get("captured_at"),
            ),
        )
        # Outside the key's transaction: the worker sees the frame only once it is committed.
        if wait > 0:
            frame = recognition_services.frame_wait(frame=frame, timeout=wait)
        finished = frame.status in (Frame.Status.DONE, Frame.Status.FAILED)
        return Response(
            serializers.FrameSerializer(frame, context={"request": request}).data,
            status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED,
            headers=REPLAYED_HEADER if replayed else None,
        )


class FrameView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    @extend_schema(responses=serializers.FrameSerializer)
    def get(self, request, frame_id):
        frame = get_for_organization(Frame, self.organization, frame_id)
        return Response(serializers.FrameSerializer(frame, context={"request": request}).data)


class IdentifyView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    @extend_schema(request=serializers.IdentifyInputSerializer, responses=serializers.FacesSerializer)
    def post(self, request):
        data = validated(serializers.IdentifyInputSerializer, request.data)
        faces = recognition_services.identify(
            organization=self.organization, data=data["image_bytes"], top_k=data["top_k"]
        )
        return Response(serializers.FacesSerializer({"faces": faces}).data)


class VerifyView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    @extend_schema(request=serializers.VerifyInputSerializer, responses=serializers.VerificationSerializer)
    def post(self, request):
        data = validated(serializers.VerifyInputSerializer, request.data)
        person = get_for_organization(Person, self.organization, data["person"], field="person")
        verification = recognition_services.verify(
            organization=self.organization, data=data["image_bytes"], person=person
        )
        return Response(serializers.VerificationSerializer(verification).data)


class DetectView(OrganizationView):
    required_scope = ApiKey.Scope.FRAMES_WRITE

    @extend_schema(request=serializers.ImageInputSerializer, responses=serializers.DetectionsSerializer)
    def post(self, request):
        data = validated(serializers.ImageInputSerializer, request.data)
        faces = recognition_services.detect(organization=self.organization, data=data["image_bytes"])
        return Response(serializers.DetectionsSerializer({"faces": faces}).data)
