"""Prometheus exposition: /metrics on the web tier (behind METRICS_TOKEN) and, when
WORKER_METRICS_PORT is set, an endpoint of each Celery worker's own.

Request latency by view and status comes from django-prometheus's middleware; the
service's own metrics are defined in apps/core/metrics.py; the queue gauges are read
from the database at each scrape (QueueCollector). Under several processes (gunicorn,
a prefork pool) prometheus-client keeps each process's values in the files of
PROMETHEUS_MULTIPROC_DIR, which the exposition sums (its multiprocess mode)."""

import hmac
import os
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class QueueCollector:
    """Frames queued and processing per organization, and the oldest queued frame's age
    (it grows when no worker takes frames), counted by PostgreSQL at scrape time."""

    def collect(self):
        from apps.organizations.models import Organization
        from apps.recognition.models import Frame

        unfinished = GaugeMetricFamily(
            "faces_frames_unfinished",
            "Frames not processed yet, by organization and status.",
            labels=["organization", "status"],
        )
        oldest = GaugeMetricFamily(
            "faces_frames_oldest_queued_seconds",
            "Age of the oldest frame still queued, by organization.",
            labels=["organization"],
        )
        counts = {
            (row["organization"], row["status"]): (row["frames"], row["since"])
            for row in Frame.objects.filter(status__in=[Frame.Status.QUEUED, Frame.Status.PROCESSING])
            .values("organization", "status")
            .annotate(frames=Count("pk"), since=Min("received_at"))
        }
        now = timezone.now()
        # Every organization, with zeros: a series that vanishes cannot be alerted on.
        for organization_id, slug in Organization.objects.values_list("pk", "slug"):
            for status in (Frame.Status.QUEUED, Frame.Status.PROCESSING):
                frames, since = counts.get((organization_id, status), (0, None))
                unfinished.add_metric([slug, status], frames)
                if status == Frame.Status.QUEUED:
                    oldest.add_metric([slug], (now - since).total_seconds() if since else 0.0)
        yield unfinished
        yield oldest


def registry(*, with_queues: bool) -> CollectorRegistry:
    collecting = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.MultiProcessCollector(collecting)
    else:
        collecting.register(_ThisProcess())
    if with_queues:
        collecting.register(QueueCollector())
    return collecting


class _ThisProcess:
    """One process (the development server, a solo worker): its own registry's values."""

    def collect(self):
        yield from REGISTRY.collect()


@require_GET
def metrics_view(request):
    """The web tier's metrics, for `Authorization: Bearer <METRICS_TOKEN>`; 404 when no
    token is set, so that the endpoint is never open by default."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Metrics are off: set METRICS_TOKEN.\n", status=404, content_type="text/plain")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry(with_queues=True)), content_type=CONTENT_TYPE_LATEST)


def clear_multiprocess_dir(keep_pid: int | None = None) -> None:
    """Values left by the processes of an earlier run would be summed with this run's."""
    folder = os.environ.get(MULTIPROCESS_DIR)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for file in Path(folder).glob("*.db"):
        if keep_pid is None or not file.stem.endswith(f"_{keep_pid}"):
            file.unlink(missing_ok=True)
