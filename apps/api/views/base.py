"""What every view shares: the organization's context, validation, pagination."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from apps.core.access import get_for_organization
from apps.core.tenancy import tenant_context
from apps.gallery.models import Group

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


def own_group(organization, filters: dict) -> dict:
    """A group filter names one of the organization's groups: another's is a 404, as a
    missing one is."""
    if filters.get("group") is not None:
        get_for_organization(Group, organization, filters["group"], field="group")
    return filters
