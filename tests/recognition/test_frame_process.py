"""Processing a frame whose row is gone: a person's erasure or a purge deleted it while
its task waited in the queue."""

import logging

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
