"""POST /frames/?wait= waits for its frame's announcement, not for the next poll."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from apps.frames.services import waiting
from apps.recognition.models import Frame
from tests.factories import FrameFactory


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", [Frame.Status.DONE, Frame.Status.FAILED])
def test_a_waiting_request_wakes_when_its_frame_finishes(outcome, org_a, monkeypatch):
    # Without the announcement the waiter would only look again after a minute.
    monkeypatch.setattr(waiting, "FRAME_WAIT_RECHECK_SECONDS", 60)
    listening = threading.Event()
    select = waiting.select.select

    def watched_select(*args):
        listening.set()
        return select(*args)

    monkeypatch.setattr(waiting.select, "select", watched_select)
    # Queued frames: a worker's result is what the request waits for.
    frame = FrameFactory(organization=org_a[0], status=Frame.Status.QUEUED)
    other = FrameFactory(organization=org_a[0], status=Frame.Status.QUEUED)
    waited = {}

    def request() -> None:
        try:
            waited["frame"] = waiting.frame_wait(frame=Frame.objects.get(pk=frame.pk), timeout=30)
        finally:
            connection.close()

    waiter = threading.Thread(target=request)
    waiter.start()
    assert listening.wait(10)
    Frame.objects.filter(pk=other.pk).update(status=Frame.Status.DONE)  # someone else's frame: keeps waiting
    time.sleep(0.3)
    assert "frame" not in waited
    finished = time.monotonic()
    Frame.objects.filter(pk=frame.pk).update(status=outcome, finished_at=timezone.now())
    waiter.join(30)
    assert waited["frame"].status == outcome
    assert time.monotonic() - finished < 10  # woken, well before its next look
