"""Enrollment quality gates and warnings, each triggered by a real photo, run with the
real Dlib model (in this process; the worker path is covered end to end)."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from apps.gallery.models import FaceImage
from apps.gallery.services import face_image_enroll
from apps.recognition.pipeline.images import decode_image, encode_jpeg
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 40_000_000}


def variant(name: str, change) -> bytes:
    return encode_jpeg(change(decode_image(photo_bytes(name), **LIMITS)))


def downscaled(image: np.ndarray, width: int = 80) -> np.ndarray:
    return cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])), interpolation=cv2.INTER_AREA)


def blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (75, 75), 0)  # about 6 % of img1's face width


def background(image: np.ndarray) -> np.ndarray:
    return image[:300, :300]  # img1's top-left corner: wall, no face


def enroll(client, person_id: int, data: bytes) -> dict:
    response = client.post(f"/api/v1/people/{person_id}/faces/", {"image": io.BytesIO(data)}, format="multipart")
    assert response.status_code == 202, response.content
    face_image_enroll(face_image_id=response.json()["id"])
    faces = client.get(f"/api/v1/people/{person_id}/faces/").json()
    return next(f for f in faces if f["id"] == response.json()["id"])


@pytest.fixture
def person(org_a):
    _, _, client = org_a
    return client, client.post("/api/v1/people/", {"name": "id01"}, format="json").json()["id"]


@pytest.mark.parametrize(
    ("photo", "reason"),
    [
        (lambda: variant("img1.jpg", background), "no_face"),
        (lambda: photo_bytes("couple.jpg"), "ambiguous"),
        (lambda: variant("img1.jpg", downscaled), "too_small"),
        (lambda: variant("img1.jpg", blurred), "blurry"),
    ],
    ids=["no_face", "ambiguous", "too_small", "blurry"],
)
def test_rejections_have_a_reason_in_the_api(person, photo, reason):
    client, person_id = person
    face = enroll(client, person_id, photo())
    assert face["status"] == "rejected"
    assert face["reason"] == reason
    assert face["detail"]
    assert not FaceImage.objects.get(pk=face["id"]).embeddings.exists()


def test_a_good_photo_is_enrolled_with_its_quality(person):
    client, person_id = person
    face = enroll(client, person_id, photo_bytes("img1.jpg"))
    assert face["status"] == "enrolled" and face["reason"] == "" and face["warnings"] == []
    assert set(face["quality"]) == {"size", "sharpness", "confidence", "yaw", "roll"}
    assert face["quality"]["size"] > 500 and face["quality"]["sharpness"] > 100


def test_near_duplicate_and_closer_to_someone_else_are_recorded(person, org_a):
    client, person_id = person
    enroll(client, person_id, photo_bytes("img1.jpg"))
    copy = enroll(client, person_id, variant("img1.jpg", lambda image: image))  # re-encoded copy
    assert copy["status"] == "enrolled"
    assert [w["code"] for w in copy["warnings"]] == ["near_duplicate"]

    other = client.post("/api/v1/people/", {"name": "id03"}, format="json").json()["id"]
    enroll(client, other, photo_bytes("img13.jpg"))
    wrong = enroll(client, person_id, photo_bytes("img14.jpg"))  # id03's photo filed under id01
    assert wrong["status"] == "enrolled"
    assert [w["code"] for w in wrong["warnings"]] == ["closer_to_other_person"]
    assert "id03" in wrong["warnings"][0]["message"]


def test_the_reason_is_shown_in_admin(person, admin_client):
    client, person_id = person
    enroll(client, person_id, photo_bytes("couple.jpg"))
    page = admin_client.get(f"/admin/gallery/person/{person_id}/change/").content.decode()
    assert "ambiguous" in page and "faces of similar size" in page


def test_png_and_webp_enroll_too(person):
    client, person_id = person
    image = Image.open(io.BytesIO(photo_bytes("img20.jpg")))
    for fmt in ("PNG", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        assert enroll(client, person_id, buffer.getvalue())["status"] == "enrolled"


def test_enrollment_strength_counts_the_photos_that_passed(person, admin_client):
    client, person_id = person

    def strength():
        one = client.get(f"/api/v1/people/{person_id}/").json()
        listed = next(p for p in client.get("/api/v1/people/").json()["results"] if p["id"] == person_id)
        assert (listed["enrolled_photos"], listed["enrollment_strength"]) == (
            one["enrolled_photos"],
            one["enrollment_strength"],
        )
        return one["enrolled_photos"], one["enrollment_strength"]

    assert strength() == (0, "none")
    enroll(client, person_id, photo_bytes("couple.jpg"))  # rejected: does not count
    enroll(client, person_id, photo_bytes("img1.jpg"))
    assert strength() == (1, "weak")
    page = admin_client.get("/admin/gallery/person/").content.decode()
    assert "weak</strong> (1 enrolled; 3 recommended)" in page
    enroll(client, person_id, photo_bytes("img2.jpg"))
    enroll(client, person_id, photo_bytes("img4.jpg"))
    assert strength() == (3, "strong")
    assert "strong (3 photos)" in admin_client.get("/admin/gallery/person/").content.decode()
