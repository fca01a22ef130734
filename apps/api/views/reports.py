"""Sightings, visits, strangers and corrections: what was seen."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from apps.api import serializers
from apps.api.views.base import (
    IdCursorPagination,
    OrganizationView,
    SightingPagination,
    own_group,
    paginated,
    validated,
)
from apps.core.access import get_for_organization
from apps.gallery.models import Person
from apps.organizations.models import ApiKey
from apps.sightings import selectors as sighting_selectors
from apps.sightings import services as sighting_services
from apps.sightings.attendance import attendance
from apps.sightings.models import Sighting, StrangerProfile, WatchlistEntry


class SightingsView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ
    pagination_class = SightingPagination

    @extend_schema(
        parameters=[serializers.SightingFilterSerializer], responses=serializers.SightingSerializer(many=True)
    )
    def get(self, request):
        filters = own_group(self.organization, validated(serializers.SightingFilterSerializer, request.query_params))
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
        filters = own_group(self.organization, validated(serializers.SightingFilterSerializer, request.query_params))
        visits = sighting_selectors.visits_filter(organization=self.organization, **filters)
        return paginated(self, visits, serializers.VisitSerializer)


class AttendancePagination(LimitOffsetPagination):
    default_limit = 1000
    max_limit = 10000


class AttendanceView(OrganizationView):
    required_scope = ApiKey.Scope.REPORTS_READ
    pagination_class = AttendancePagination

    @extend_schema(
        parameters=[serializers.AttendanceFilterSerializer], responses=serializers.AttendanceSerializer(many=True)
    )
    def get(self, request):
        """Per person and day (or week, or month) of the organization's time zone."""
        filters = validated(
            serializers.AttendanceFilterSerializer, request.query_params, context={"organization": self.organization}
        )
        paginator = self.pagination_class()
        limit, offset = paginator.get_limit(request), paginator.get_offset(request)
        found = attendance(
            organization=self.organization, offset=offset, limit=limit, **own_group(self.organization, filters)
        )
        # The slice was taken in the query: the paginator only writes the links.
        paginator.request, paginator.limit, paginator.offset, paginator.count = request, limit, offset, found.total
        return paginator.get_paginated_response(serializers.AttendanceSerializer(found.rows, many=True).data)


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
        data = validated(serializers.PromoteSerializer, request.data)
        person = sighting_services.stranger_promote(
            organization=self.organization,
            profile=profile,
            name=data["name"],
            consent=data.get("consent"),
            api_key=request.auth,
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


# --- The watchlist ----------------------------------------------------------------------


class WatchlistView(OrganizationView):
    """Who is watched: managing it takes gallery:write, as managing the gallery does."""

    required_scope = ApiKey.Scope.GALLERY_WRITE
    pagination_class = IdCursorPagination

    @extend_schema(responses=serializers.WatchlistEntrySerializer(many=True))
    def get(self, request):
        entries = WatchlistEntry.objects.filter(organization=self.organization).select_related("person", "added_by")
        return paginated(self, entries, serializers.WatchlistEntrySerializer)

    @extend_schema(request=serializers.WatchlistInputSerializer, responses={201: serializers.WatchlistEntrySerializer})
    def post(self, request):
        data = validated(serializers.WatchlistInputSerializer, request.data)
        person = (
            get_for_organization(Person, self.organization, data["person"], field="person")
            if "person" in data
            else None
        )
        stranger = (
            get_for_organization(StrangerProfile, self.organization, data["stranger"], field="stranger")
            if "stranger" in data
            else None
        )
        entry = sighting_services.watchlist_add(
            organization=self.organization,
            person=person,
            stranger=stranger,
            reason=data["reason"],
            api_key=request.auth,
        )
        return Response(serializers.WatchlistEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class WatchlistEntryView(OrganizationView):
    required_scope = ApiKey.Scope.GALLERY_WRITE

    @extend_schema(responses={204: None})
    def delete(self, request, entry_id):
        entry = get_for_organization(WatchlistEntry, self.organization, entry_id)
        sighting_services.watchlist_remove(entry=entry, api_key=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)
