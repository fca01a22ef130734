"""Helpers for tests that let the real Celery worker (the `celery_worker` fixture) do
the work: wait for a condition, and enroll a person from shared photos."""

import time

import pytest

from tests.faces import photo_bytes


def wait_for(condition, what: str, timeout: float = 120, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def enroll(organization, name: str, *photos: str):
    """A person with these shared photos, enrolled by the worker; every photo must pass."""
    return enroll_images(organization, name, [photo_bytes(photo) for photo in photos])


def enroll_images(organization, name: str, images: list[bytes]):
    from apps.gallery.models import FaceImage
    from apps.gallery.services import face_image_add, person_create

    person = person_create(organization=organization, name=name)
    for data in images:
        face_image_add(person=person, data=data)
    wait_for(lambda: not FaceImage.objects.filter(person=person, status="pending").exists(), f"{name}'s photos")
    assert set(FaceImage.objects.filter(person=person).values_list("status", flat=True)) == {"enrolled"}
    return person
