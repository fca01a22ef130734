"""People and their photos: the gallery of the API key's organization."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.api import serializers
from apps.api.idempotency import REPLAYED_HEADER, made_once
from apps.api.views.base import IDEMPOTENCY_HEADER, IdCursorPagination, OrganizationView, paginated, validated
from apps.core.access import get_for_organization
from apps.core.files import zip_response
from apps.gallery import selectors as gallery_selectors
from apps.gallery import services as gallery_services
from apps.gallery.models import Person
from apps.organizations.models import ApiKey
from apps.sightings import services as sighting_services


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


class PersonConsentsView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses=serializers.ConsentSerializer(many=True))
    def get(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        return Response(serializers.ConsentSerializer(person.consents.all(), many=True).data)

    @extend_schema(request=serializers.ConsentInputSerializer, responses={201: serializers.ConsentSerializer})
    def post(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        data = validated(serializers.ConsentInputSerializer, request.data)
        consent = gallery_services.consent_record(person=person, api_key=request.auth, **data)
        return Response(serializers.ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)


class PersonConsentWithdrawView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(
        request=None,
        responses=serializers.ConsentWithdrawnSerializer,
        description="Withdraws the consent; unless another is in force, the person's biometric data (photos, "
        "embeddings, sightings with their crops, frames of them alone, check-in photos) is erased at once.",
    )
    def post(self, request, person_id, consent_id):
        person = get_for_organization(Person, self.organization, person_id)
        consent = get_for_organization(person.consents.all(), self.organization, consent_id)
        erased = sighting_services.consent_withdraw(consent=consent, api_key=request.auth)
        consent.refresh_from_db()
        return Response({"consent": serializers.ConsentSerializer(consent).data, "erased": erased})


class PersonExportView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
        description="Everything the organization holds about the person, as one zip streamed as it is read: "
        "person.json (profile, groups, consent records, photos, embeddings, sightings, visits, attendance, "
        "check-ins, corrections, audit events) and the files (photos, consent documents, crops, check-in photos).",
    )
    def get(self, request, person_id):
        person = get_for_organization(Person, self.organization, person_id)
        return zip_response(sighting_services.person_export(person=person, api_key=request.auth), f"person-{person.pk}")
