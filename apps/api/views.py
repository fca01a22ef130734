"""One view per operation: validate input, call a service, shape the answer."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api import serializers
from apps.api.idempotency import REPLAYED_HEADER, made_once
from apps.core.access import get_for_organization, scoped
from apps.core.tenancy import tenant_context
from apps.frames import services as recognition_services
from apps.gallery import selectors as gallery_selectors
from apps.gallery import services as gallery_services
from apps.gallery.models import Person
from apps.organizations import services as organization_services
from apps.organizations.models import ApiKey, Camera
from apps.recognition.models import Frame
from apps.sightings import selectors as sighting_selectors
from apps.sightings import services as sighting_services
from apps.sightings.models import Sighting, StrangerProfile

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, description="A retry with the same key makes nothing twice."
)


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OrganizationView(APIView):
    """Acts for the API key's organization, inside its tenant context (row-level security)."""

    _tenant = None

    @property
    def organization(self):
        return self.request.auth.organization

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, scopes, throttles
        self._tenant = tenant_context(request.auth.organization_id)
        self._tenant.__enter__()

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._tenant is not None:
                self._tenant.__exit__(None, None, None)
                self._tenant = None


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class SightingPagination(IdCursorPagination):
    ordering = ("-seen_at", "-id")


def paginated(view, queryset, serializer_class):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    data = serializer_class(page, many=True, context={"request": view.request}).data
    return paginator.get_paginated_response(data)


# --- People and their photos ----------------------------------------------------------


class PeopleView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE
    pagination_class = IdCursorPagination

    @extend_schema(parameters=[serializers.PersonSearchSerializer], responses=serializers.PersonSerializer(many=True))
    def get(self, request):
        search = validated(serializers.PersonSearchSerializer, request.query_params).get("search", "")
        people = gallery_selectors.people_search(organization=self.organization, text=search)
        return paginated(self, people, serializers.PersonSerializer)

    @extend_schema(request=serializers.PersonSerializer, responses={201: serializers.PersonSerializer})
    def post(self, request):
        data = validated(serializers.PersonSerializer, request.data)
        person = gallery_services.person_create(organization=self.organization, **data)
        return Response(serializers.PersonSerializer(person).data, status=status.HTTP_201_CREATED)


class PersonView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses=serializers.PersonSerializer)
    def get(self, request, person_id):
        return Response(serializers.PersonSerializer(get_for_organization(Person, self.organization, person_id)).data)

    @extend_schema(request=serializers.PersonSerializer, responses=serializers.PersonSerializer)
    def put(self, request, person_id):
        return self._update(request, person_id, partial=False)

    @extend_schema(request=serializers.PersonSerializer, responses=serializers.PersonSerializer)
    def patch(self, request, person_id):
        return self._update(request, person_id, partial=True)

    def _update(self, request, person_id, *, partial):
        person = get_for_organization(Person, self.organization, person_id)
        data = validated(serializers.PersonSerializer, request.data, instance=person, partial=partial)
        person = gallery_services.person_update(person=person, **data)
        return Response(serializers.PersonSerializer(person).data)

    @extend_schema(responses={204: None})
    def delete(self, request, person_id):
        gallery_services.person_delete(
            person=get_for_organization(Person, self.organization, person_id), api_key=request.auth
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonFacesView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses=serializers.FaceImageSerializer(many=True))
    def get(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        return Response(serializers.FaceImageSerializer(person.face_images.order_by("pk"), many=True).data)

    @extend_schema(
        request=serializers.ImageInputSerializer,
        responses={202: serializers.FaceImageAcceptedSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        data = validated(serializers.ImageInputSerializer, request.data)
        face_image, replayed = made_once(
            request,
            field="face_image",
            make=lambda: gallery_services.face_image_add(person=person, data=data["image_bytes"]),
        )
        return Response(
            {"id": face_image.pk, "status": face_image.status},
            status=status.HTTP_202_ACCEPTED,
            headers=REPLAYED_HEADER if replayed else None,
        )


class PersonFaceView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses={204: None})
    def delete(self, request, person_id, face_id):
        person = get_for_organization(Person, self.organization, person_id)
        # Another person's photo is not this person's: the same 404 as a missing one.
        face_image = get_for_organization(person.face_images.all(), self.organization, face_id)
        gallery_services.face_image_delete(face_image=face_image)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Frames and synchronous recognition ------------------------------------------------


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


# --- Cameras --------------------------------------------------------------------------


class CamerasView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE
    pagination_class = IdCursorPagination

    @extend_schema(responses=serializers.CameraSerializer(many=True))
    def get(self, request):
        return paginated(self, scoped(Camera, self.organization), serializers.CameraSerializer)

    @extend_schema(request=serializers.CameraSerializer, responses={201: serializers.CameraSerializer})
    def post(self, request):
        data = validated(serializers.CameraSerializer, request.data)
        camera = organization_services.camera_create(organization=self.organization, **data)
        return Response(serializers.CameraSerializer(camera).data, status=status.HTTP_201_CREATED)


class CameraView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses=serializers.CameraSerializer)
    def get(self, request, camera_id):
        return Response(serializers.CameraSerializer(get_for_organization(Camera, self.organization, camera_id)).data)

    @extend_schema(request=serializers.CameraSerializer, responses=serializers.CameraSerializer)
    def put(self, request, camera_id):
        return self._update(request, camera_id, partial=False)

    @extend_schema(request=serializers.CameraSerializer, responses=serializers.CameraSerializer)
    def patch(self, request, camera_id):
        return self._update(request, camera_id, partial=True)

    def _update(self, request, camera_id, *, partial):
        camera = get_for_organization(Camera, self.organization, camera_id)
        data = validated(serializers.CameraSerializer, request.data, instance=camera, partial=partial)
        return Response(serializers.CameraSerializer(organization_services.camera_update(camera=camera, **data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, camera_id):
        camera = get_for_organization(Camera, self.organization, camera_id)
        organization_services.camera_delete(camera=camera, api_key=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Sightings ------------------------------------------------------------------------


class SightingsView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ
    pagination_class = SightingPagination

    @extend_schema(
        parameters=[serializers.SightingFilterSerializer], responses=serializers.SightingSerializer(many=True)
    )
    def get(self, request):
        filters = validated(serializers.SightingFilterSerializer, request.query_params)
        sightings = sighting_selectors.sightings_filter(organization=self.organization, **filters)
        return paginated(self, sightings, serializers.SightingSerializer)


class SightingView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ

    @extend_schema(responses=serializers.SightingSerializer)
    def get(self, request, sighting_id):
        sighting = get_for_organization(Sighting, self.organization, sighting_id)
        return Response(serializers.SightingSerializer(sighting, context={"request": request}).data)


# --- Visits, strangers, corrections ------------------------------------------------------


class VisitPagination(IdCursorPagination):
    ordering = ("-started_at", "-id")


class VisitsView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ
    pagination_class = VisitPagination

    @extend_schema(parameters=[serializers.SightingFilterSerializer], responses=serializers.VisitSerializer(many=True))
    def get(self, request):
        filters = validated(serializers.SightingFilterSerializer, request.query_params)
        visits = sighting_selectors.visits_filter(organization=self.organization, **filters)
        return paginated(self, visits, serializers.VisitSerializer)


class StrangerPagination(IdCursorPagination):
    ordering = ("-last_seen", "-id")


class StrangersView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ
    pagination_class = StrangerPagination

    @extend_schema(
        parameters=[serializers.StrangerStatusSerializer], responses=serializers.StrangerSerializer(many=True)
    )
    def get(self, request):
        wanted = validated(serializers.StrangerStatusSerializer, request.query_params)["status"]
        paginator = self.pagination_class()
        profiles = paginator.paginate_queryset(
            sighting_selectors.strangers_list(organization=self.organization, status=wanted), request, view=self
        )
        samples = sighting_selectors.stranger_samples(profiles=profiles)
        data = serializers.StrangerSerializer(
            profiles, many=True, context={"request": request, "samples": samples}
        ).data
        return paginator.get_paginated_response(data)


def _stranger_response(request, profile):
    samples = sighting_selectors.stranger_samples(profiles=[profile])
    return Response(serializers.StrangerSerializer(profile, context={"request": request, "samples": samples}).data)


class StrangerPromoteView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(request=serializers.PromoteSerializer, responses={201: serializers.PersonSerializer})
    def post(self, request, stranger_id):
        profile = get_for_organization(StrangerProfile, self.organization, stranger_id)
        name = validated(serializers.PromoteSerializer, request.data)["name"]
        person = sighting_services.stranger_promote(
            organization=self.organization, profile=profile, name=name, api_key=request.auth
        )
        return Response(serializers.PersonSerializer(person).data, status=status.HTTP_201_CREATED)


class StrangerDismissView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(request=None, responses=serializers.StrangerSerializer)
    def post(self, request, stranger_id):
        profile = get_for_organization(StrangerProfile, self.organization, stranger_id)
        sighting_services.stranger_dismiss(organization=self.organization, profile=profile, api_key=request.auth)
        return _stranger_response(request, profile)


class SightingCorrectView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(request=serializers.CorrectionInputSerializer, responses={201: serializers.CorrectionSerializer})
    def post(self, request, sighting_id):
        sighting = get_for_organization(Sighting, self.organization, sighting_id)
        person_id = validated(serializers.CorrectionInputSerializer, request.data)["person"]
        person = (
            None if person_id is None else get_for_organization(Person, self.organization, person_id, field="person")
        )
        correction = sighting_services.sighting_correct(
            organization=self.organization, sighting=sighting, person=person, api_key=request.auth
        )
        return Response(serializers.CorrectionSerializer(correction).data, status=status.HTTP_201_CREATED)
