"""Processing a frame whose row is gone: a person's erasure or a purge deleted it while
its task waited in the queue; and which frames a process that takes over queues again."""

import logging
import socket
import subprocess

import pytest

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
