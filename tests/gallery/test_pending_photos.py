"""No enrollment photo stays pending for ever: one stored while the broker was down is
queued again once it is back, one its worker failed on is tried again and then
rejected with the last error, and a second message for a photo already enrolled is
left alone. The real worker, the real Redis stopped, a real unreadable file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from apps.core.tenancy import tenant_context
from apps.gallery.models import FaceEmbedding, FaceImage
from apps.gallery.services import face_image_add, face_image_enroll, face_images_requeue_stale, person_create
from project import embedded
from tests.faces import photo_bytes
from tests.worker import wait_for


def photo(pk: int) -> FaceImage:
    return FaceImage.objects.get(pk=pk)


@pytest.mark.django_db(transaction=True)
def test_a_photo_stored_while_the_broker_is_down_is_enrolled_once_it_is_back(celery_worker, make_org, settings):
    organization, _, client = make_org("pending-broker")
    person = person_create(organization=organization, name="id01")
    with embedded.redis_stopped():
        answer = client.post(
            f"/api/v1/people/{person.pk}/faces/",
            {"image": SimpleUploadedFile("a.jpg", photo_bytes("img1.jpg"), content_type="image/jpeg")},
            format="multipart",
        )
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "broker_unavailable"
        assert not FaceImage.objects.exists()
        # Stored just before its task could be sent (the outage began in between).
        with tenant_context(organization.pk):
            stored = face_image_add(person=person, data=photo_bytes("img1.jpg"))
        assert photo(stored.pk).status == "pending"
    settings.RECOGNITION_STALE_FRAME_SECONDS = 0
    assert face_images_requeue_stale() == 1
    wait_for(lambda: photo(stored.pk).status == "enrolled", "the photo, after the outage", 90)
    assert face_images_requeue_stale() == 0


@pytest.mark.django_db(transaction=True)
def test_a_photo_its_worker_fails_on_is_tried_again_then_rejected_with_the_last_error(
    celery_worker, make_org, settings
):
    settings.RECOGNITION_STALE_FRAME_SECONDS = 0
    settings.RECOGNITION_MAX_ATTEMPTS = 3
    organization, _, client = make_org("pending-failing")
    person = person_create(organization=organization, name="id01")
    with transaction.atomic():  # its task is sent at the commit, after the file is gone
        stored = face_image_add(person=person, data=photo_bytes("img1.jpg"))
        stored.image.storage.delete(stored.image.name)  # lost by the storage, as a failing disk or bucket would
    for attempt in (1, 2, 3):
        failed = f"Attempt {attempt} failed"
        wait_for(lambda failed=failed: photo(stored.pk).detail.startswith(failed), failed, 60)
        assert photo(stored.pk).attempts == attempt
        # Still pending between attempts, saying why.
        listed = client.get(f"/api/v1/people/{person.pk}/faces/").json()
        assert listed[0]["status"] == "pending" and "FileNotFoundError" in listed[0]["detail"]
        assert face_images_requeue_stale() == (1 if attempt < 3 else 0)
    given_up = photo(stored.pk)
    assert (given_up.status, given_up.reason) == ("rejected", "processing_failed")
    assert given_up.detail.startswith("Given up after 3 attempts. Attempt 3 failed: FileNotFoundError")
    assert face_images_requeue_stale() == 0


@pytest.mark.django_db
def test_a_second_message_for_an_enrolled_photo_is_left_alone_unless_it_asks_again(org_a):
    person = person_create(organization=org_a[0], name="id01")
    stored = face_image_add(person=person, data=photo_bytes("img1.jpg"))
    assert face_image_enroll(face_image_id=stored.pk).status == "enrolled"
    width = FaceEmbedding.objects.get(face_image=stored).box_w
    FaceEmbedding.objects.filter(face_image=stored).update(box_w=1)  # marks whether it is embedded again

    face_image_enroll(face_image_id=stored.pk)  # the sweep's copy, arriving late
    assert FaceEmbedding.objects.get(face_image=stored).box_w == 1
    assert photo(stored.pk).attempts == 1

    assert face_image_enroll(face_image_id=stored.pk, again=True).status == "enrolled"  # the admin's re-embed
    assert FaceEmbedding.objects.get(face_image=stored).box_w == width
