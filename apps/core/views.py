from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.core.health import health


@require_GET
def healthz(request):
    report = health()
    return JsonResponse(report, status=200 if report["ok"] else 503)
