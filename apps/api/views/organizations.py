"""Cameras."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.api import serializers
from apps.api.views.base import IdCursorPagination, OrganizationView, paginated, validated
from apps.core.access import get_for_organization, scoped
from apps.organizations import services as organization_services
from apps.organizations.models import ApiKey, Camera


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
