"""Test data builders (factory_boy): the one place tests make rows directly, for tests
whose subject comes after the step that would make them (a frame already recognized,
a sighting already stored)."""

from datetime import timedelta

import factory
from django.utils import timezone

from apps.recognition.models import Frame
from apps.sightings.models import Sighting


class FrameFactory(factory.django.DjangoModelFactory):
    """A frame already processed."""

    class Meta:
        model = Frame

    status = Frame.Status.DONE
    captured_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    received_at = factory.SelfAttribute("captured_at")


class SightingFactory(factory.django.DjangoModelFactory):
    """A face of a frame as recognition stores it, by the Dlib model (`person=None`: a
    stranger)."""

    class Meta:
        model = Sighting

    frame = factory.SubFactory(FrameFactory, organization=factory.SelfAttribute("..organization"))
    camera = factory.SelfAttribute("frame.camera")
    seen_at = factory.SelfAttribute("frame.captured_at")
    distance = 0.01
    similarity = 0.99
    threshold = 0.07
    model_name = "Dlib"
    box_x = 0
    box_y = 0
    box_w = 100
    box_h = 100
    quality = factory.LazyFunction(
        lambda: {"size": 100, "sharpness": 200.0, "confidence": 1.0, "yaw": 0.0, "roll": 0.0}
    )
