"""Processing a frame whose row is gone: a person's erasure or a purge deleted it while
its task waited in the queue; and which frames a process that takes over queues again."""

import logging
import socket
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.frames import services
from apps.recognition.models import Frame
from apps.sightings.models import Sighting
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db


def test_a_frame_deleted_before_its_turn_is_skipped_without_an_error(org_a, caplog):
    frame = services.frame_create(organization=org_a[0], data=photo_bytes("img1.jpg"))
    frame_id = frame.pk
    frame.delete()
    with caplog.at_level(logging.INFO, logger="apps.frames.services.frames"):
        assert services.frame_process(frame_id=frame_id) is None
    assert f"frame {frame_id} was deleted before it was processed" in caplog.text
    assert not Frame.objects.exists() and not Sighting.objects.exists()


def test_the_frames_queued_again_at_once_are_those_a_dead_process_of_this_machine_held(org_a):
    finished = subprocess.Popen(["true"])
    finished.wait()
    running = subprocess.Popen(["sleep", "60"])
    host = socket.gethostname()
    held = {
        "dead": (Frame.Status.PROCESSING, f"{host}:{finished.pid}"),
        "alive": (Frame.Status.PROCESSING, f"{host}:{running.pid}"),
        "another machine's": (Frame.Status.PROCESSING, f"elsewhere:{finished.pid}"),
        "done": (Frame.Status.DONE, f"{host}:{finished.pid}"),
    }
    frames = {}
    for name, (status, worker) in held.items():
        frames[name] = services.frame_create(organization=org_a[0], data=photo_bytes("img1.jpg"))
        Frame.objects.filter(pk=frames[name].pk).update(status=status, worker=worker)
    try:
        assert services.frames_requeue_orphaned() == 1
        assert services.frames_requeue_orphaned() == 0  # queued once
    finally:
        running.kill()
    statuses = {name: Frame.objects.get(pk=frame.pk).status for name, frame in frames.items()}
    assert statuses == {"dead": "queued", "alive": "processing", "another machine's": "processing", "done": "done"}


def test_a_frame_whose_worker_died_at_every_attempt_fails_instead_of_being_queued_again(org_a, settings):
    """A frame that kills the process taking it (a decoder crash, memory) would otherwise
    go round the pool for ever: after RECOGNITION_MAX_ATTEMPTS it fails, for the client
    polling or waiting on it to learn."""
    settings.RECOGNITION_MAX_ATTEMPTS = 3
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = f"{socket.gethostname()}:{finished.pid}"
    frames = {}
    for attempts in (2, 3):
        frames[attempts] = services.frame_create(organization=org_a[0], data=photo_bytes("img1.jpg"))
        Frame.objects.filter(pk=frames[attempts].pk).update(status="processing", worker=dead, attempts=attempts)

    assert services.frames_requeue_orphaned() == 1
    again, given_up = (Frame.objects.get(pk=frames[n].pk) for n in (2, 3))
    assert again.status == "queued"
    assert (given_up.status, given_up.error_code) == ("failed", "processing_failed")
    assert "Given up after 3 attempts" in given_up.error and given_up.finished_at is not None
    # The stale-frame sweep, which sees other machines' frames, gives up the same way.
    Frame.objects.filter(pk=again.pk).update(
        status="processing", worker="elsewhere:1", attempts=3, started_at=timezone.now() - timedelta(hours=1)
    )
    assert services.frames_requeue_stale() == 0
    assert Frame.objects.get(pk=again.pk).error_code == "processing_failed"
