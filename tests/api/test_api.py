"""The API on the real database, without a worker: validation, scoping, errors."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.gallery.models import FaceImage, Person
from apps.organizations.models import Camera
from apps.organizations.services import api_key_create
from apps.recognition.models import Frame
from tests.faces import photo_bytes
from tests.recognition.pipeline.test_images import png_bomb

pytestmark = pytest.mark.django_db


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    return {"image": SimpleUploadedFile(name, data, content_type=content_type)}


def stored_files(media_root) -> list:
    return [p for p in media_root.rglob("*") if p.is_file()]


def test_requests_without_a_valid_key_are_refused(client, org_a):
    response = client.post("/api/v1/people/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    response = client.get("/api/v1/people/", HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_key_without_the_scope_gets_403(org_a):
    organization, _, client = org_a
    _, raw_key = api_key_create(organization=organization, scopes=["reports:read"])
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = client.post("/api/v1/people/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_create_person_and_validation_errors(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/people/", {"name": "Ada"}, format="json")
    assert response.status_code == 201
    assert set(response.json()) >= {"id", "name"} and response.json()["name"] == "Ada"
    response = client.post("/api/v1/people/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": "This field is required.",
        "field": "name",
    }
    response = client.post("/api/v1/people/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize(
    ("name", "data", "code", "status"),
    [
        ("empty.jpg", b"", "validation_error", 400),
        ("text.jpg", b"just some text", "image_invalid", 400),
        ("truncated.jpg", None, "image_invalid", 400),
        ("bomb.png", png_bomb(20000, 20000), "image_too_large", 413),
    ],
)
def test_bad_images_are_refused_and_nothing_is_stored(org_a, media_root, name, data, code, status):
    _, _, client = org_a
    if data is None:
        whole = photo_bytes("img1.jpg")
        data = whole[: len(whole) // 3]
    person = client.post("/api/v1/people/", {"name": "Ada"}, format="json").json()
    before = stored_files(media_root)
    for url in (f"/api/v1/people/{person['id']}/faces/", "/api/v1/frames/"):
        response = client.post(url, upload(name, data), format="multipart")
        assert response.status_code == status, response.content
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["field"] == "image"
    assert FaceImage.objects.count() == 0 and Frame.objects.count() == 0
    assert stored_files(media_root) == before


def test_byte_limit(org_a):
    _, _, client = org_a
    with override_settings(API_MAX_IMAGE_BYTES=10_000):
        response = client.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img1.jpg")), format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"
    assert Frame.objects.count() == 0


def test_a_missing_model_answers_503_naming_the_command(make_org, tmp_path):
    organization, _, client = make_org("facenet-org", model="Facenet")
    person = client.post("/api/v1/people/", {"name": "Ada"}, format="json").json()
    with override_settings(DEEPFACE_HOME=tmp_path):
        for url in (f"/api/v1/people/{person['id']}/faces/", "/api/v1/frames/"):
            response = client.post(url, upload("a.jpg", photo_bytes("img1.jpg")), format="multipart")
            assert response.status_code == 503
            error = response.json()["error"]
            assert error["code"] == "model_unavailable"
            assert "python manage.py provision_models --model Facenet" in error["message"]
    assert FaceImage.objects.count() == 0 and Frame.objects.count() == 0


def test_another_organizations_rows_are_not_found(org_a, org_b):
    organization_b, _, client_b = org_b
    _, _, client_a = org_a
    person_b = Person.objects.create(organization=organization_b, name="Bea")
    camera_b = Camera.objects.create(organization=organization_b, name="door")
    frame = client_b.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart").json()

    for response in (
        client_a.get(f"/api/v1/people/{person_b.pk}/faces/"),
        client_a.post(
            f"/api/v1/people/{person_b.pk}/faces/", upload("a.jpg", photo_bytes("img1.jpg")), format="multipart"
        ),
        client_a.get(f"/api/v1/frames/{frame['id']}/"),
        client_a.post(
            "/api/v1/frames/", {**upload("a.jpg", photo_bytes("img1.jpg")), "camera": camera_b.pk}, format="multipart"
        ),
        client_a.get("/api/v1/people/99999/faces/"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert "Bea" not in response.content.decode()
    assert client_a.get("/api/v1/people/").json() == []
    assert FaceImage.objects.count() == 0 and Frame.objects.filter(organization__slug="org-a").count() == 0


def test_frame_is_accepted_and_queued(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/frames/{body['id']}/")
    assert client.get(f"/api/v1/frames/{body['id']}/").json()["status"] == "queued"
