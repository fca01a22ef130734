from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.organizations import media
from apps.organizations import views as organization_views
from apps.recognition import views as recognition_views
from project.health import healthz
from project.metrics import metrics_view

urlpatterns = [
    path("admin/switch-organization/", organization_views.switch_organization, name="switch-organization"),
    path("admin/login/", organization_views.admin_login),
    path("admin/", admin.site.urls),
    path("reports/", include("apps.sightings.urls")),
    path("capture/", recognition_views.capture, name="capture"),
    path("kiosk/", recognition_views.kiosk, name="kiosk"),
    path("accounts/login/", organization_views.SignInView.as_view(), name="login"),
    path("accounts/second-factor/", organization_views.second_factor, name="second-factor"),
    path(
        "accounts/second-factor/recovery-codes/",
        organization_views.renew_recovery_codes,
        name="recovery-codes",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("apps.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media.serve, name="media"),
]

handler404 = "apps.api.errors.handler404"
handler500 = "apps.api.errors.handler500"
