"""The worker's metrics, read from its own endpoint (WORKER_METRICS_PORT) as Prometheus
would: the session's real worker, a prefork pool whose process writes its values to
PROMETHEUS_MULTIPROC_DIR, processes a real frame and tries a real webhook."""

import re

import pytest
import requests

from apps.frames.services import frame_create
from apps.recognition.models import Frame
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import event_publish
from project.workers import free_port
from tests.faces import photo_bytes
from tests.worker import enroll, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def read(url: str) -> dict[str, float]:
    """Every sample of the exposition, by its name and labels as written."""
    text = requests.get(url, timeout=10).text
    return {
        match.group(1): float(match.group(2))
        for match in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE)
    }


def test_a_processed_frame_and_a_webhook_attempt_show_in_the_workers_metrics(
    celery_worker, worker_metrics_url, make_org
):
    organization, _, _ = make_org("metrics")
    enroll(organization, "Ann", "img1.jpg")
    before = read(worker_metrics_url)
    # Ann (img2) and a stranger (img13), one frame each.
    frames = [frame_create(organization=organization, data=photo_bytes(name)) for name in ("img2.jpg", "img13.jpg")]
    wait_for(lambda: all(f.status == "done" for f in Frame.objects.filter(pk__in=[f.pk for f in frames])), "frames")
    # Nothing listens on this port: the worker's attempts fail and it gives up.
    WebhookSubscription.objects.create(
        organization=organization, url=f"http://127.0.0.1:{free_port()}/hook", events=["visit.started"]
    )
    [delivery] = event_publish(organization=organization, event="visit.started", data={})
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "failed", "the delivery to fail")
    after = read(worker_metrics_url)

    def grew(sample: str) -> float:
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    for stage in ("decode", "detect", "embed", "match", "write"):
        assert grew(f'faces_frame_stage_seconds_count{{stage="{stage}"}}') == 2, stage
    assert grew('faces_faces_total{result="recognized"}') == 1
    assert grew('faces_faces_total{result="unknown"}') == 1
    task = "apps.frames.tasks.frame_process_task"
    assert grew(f'faces_celery_tasks_total{{outcome="success",task="{task}"}}') == 2
    assert grew('faces_webhook_attempts_total{outcome="retrying"}') == 2  # WEBHOOK_MAX_ATTEMPTS is 3 here
    assert grew('faces_webhook_attempts_total{outcome="failed"}') == 1
    # The pool process loaded its model once, at its start, before the test read anything.
    loads = [value for sample, value in after.items() if sample.startswith("faces_model_load_seconds_count")]
    assert sum(loads) >= 1
