"""The API on the real database and broker, without a worker: validation, error shape,
scoping, throttling, backpressure and idempotency."""

import base64
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.gallery.models import FaceImage, Person
from apps.organizations.models import Camera
from apps.organizations.services import api_key_create
from apps.recognition.models import Frame
from tests.faces import photo_bytes
from tests.recognition.pipeline.test_images import encoded, png_bomb

pytestmark = pytest.mark.django_db


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    return {"image": SimpleUploadedFile(name, data, content_type=content_type)}


def stored_files(media_root) -> list:
    return sorted(p for p in media_root.rglob("*") if p.is_file())


def error(response) -> dict:
    return response.json()["error"]


def test_requests_without_a_valid_key_are_refused(client, org_a):
    response = client.post("/api/v1/people/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"
    response = client.get("/api/v1/people/", HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert response.status_code == 401
    assert error(response)["code"] == "authentication_failed"


def test_a_key_without_the_scope_gets_403(org_a):
    organization, _, client = org_a
    _, raw_key = api_key_create(organization=organization, scopes=["reports:read"])
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = client.post("/api/v1/people/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"
    assert client.get("/api/v1/sightings/").status_code == 200


def test_people_crud_and_search(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/people/", {"name": "Ada Lovelace", "external_id": "E-1"}, format="json")
    assert response.status_code == 201
    ada = response.json()
    assert ada["name"] == "Ada Lovelace" and ada["external_id"] == "E-1"
    client.post("/api/v1/people/", {"name": "Grace Hopper"}, format="json")
    assert [p["name"] for p in client.get("/api/v1/people/?search=lovelace").json()["results"]] == ["Ada Lovelace"]
    assert [p["name"] for p in client.get("/api/v1/people/?search=e-1").json()["results"]] == ["Ada Lovelace"]
    assert len(client.get("/api/v1/people/").json()["results"]) == 2
    assert client.patch(f"/api/v1/people/{ada['id']}/", {"name": "Ada"}, format="json").json()["name"] == "Ada"
    assert client.get(f"/api/v1/people/{ada['id']}/").json()["external_id"] == "E-1"
    assert client.delete(f"/api/v1/people/{ada['id']}/").status_code == 204
    assert client.get(f"/api/v1/people/{ada['id']}/").status_code == 404


def test_validation_errors_have_one_shape(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/people/", {}, format="json")
    assert response.status_code == 400
    assert error(response) == {"code": "validation_error", "message": "This field is required.", "field": "name"}
    response = client.post("/api/v1/people/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert error(response)["code"] == "malformed_request"
    response = client.post("/api/v1/people/", b"<person/>", content_type="application/xml")
    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"


def bad_inputs():
    whole = photo_bytes("img1.jpg")
    tiny = encoded(__import__("numpy").zeros((1, 1, 3), "uint8"), "PNG")
    return [
        ("zero bytes", "multipart", upload("a.jpg", b""), 400, "validation_error"),
        ("truncated jpeg", "multipart", upload("a.jpg", whole[: len(whole) // 3]), 400, "image_invalid"),
        ("text named .jpg", "multipart", upload("a.jpg", b"just some text"), 400, "image_invalid"),
        ("1x1 image", "multipart", upload("a.png", tiny, "image/png"), 400, "image_invalid"),
        ("20000x20000 png", "multipart", upload("a.png", png_bomb(20000, 20000), "image/png"), 413, "image_too_large"),
        ("base64 over the limit", "json", {"image_base64": "A" * (14 * 1024 * 1024)}, 413, "image_too_large"),
        ("base64 not base64", "json", {"image_base64": "not base64!"}, 400, "validation_error"),
        (
            "both image and base64",
            "multipart",
            {**upload("a.jpg", whole), "image_base64": "AAAA"},
            400,
            "validation_error",
        ),
        ("no image at all", "json", {}, 400, "validation_error"),
    ]


@pytest.mark.parametrize(("name", "fmt", "body", "status", "code"), bad_inputs(), ids=[b[0] for b in bad_inputs()])
def test_bad_images_are_refused_and_nothing_is_stored(org_a, media_root, name, fmt, body, status, code):
    organization, _, client = org_a
    person = Person.objects.create(organization=organization, name="Ada")
    before = stored_files(media_root)
    for url in (f"/api/v1/people/{person.pk}/faces/", "/api/v1/frames/", "/api/v1/identify/", "/api/v1/detect/"):
        for value in body.values():
            if hasattr(value, "seek"):
                value.seek(0)
        response = client.post(url, body, format=fmt)
        assert response.status_code == status, (url, response.content)
        assert error(response)["code"] == code
    assert FaceImage.objects.count() == 0 and Frame.objects.count() == 0
    assert stored_files(media_root) == before


def test_wrong_content_type_is_415(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/frames/", photo_bytes("img1.jpg"), content_type="image/jpeg")
    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"
    assert Frame.objects.count() == 0


def test_json_base64_frames_are_accepted(org_a):
    _, _, client = org_a
    data = base64.b64encode(photo_bytes("img20.jpg")).decode()
    response = client.post("/api/v1/frames/", {"image_base64": data}, format="json")
    assert response.status_code == 202
    assert Frame.objects.get().image.read() == photo_bytes("img20.jpg")


def test_byte_limit(org_a):
    _, _, client = org_a
    with override_settings(API_MAX_IMAGE_BYTES=10_000):
        response = client.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img1.jpg")), format="multipart")
    assert response.status_code == 413
    assert error(response)["code"] == "image_too_large"
    with override_settings(API_MAX_IMAGE_BYTES=10_000):
        body = {"image_base64": base64.b64encode(photo_bytes("img1.jpg")).decode()}
        response = client.post("/api/v1/frames/", body, format="json")
    assert response.status_code == 413
    assert error(response) == {
        "code": "image_too_large",
        "message": response.json()["error"]["message"],
        "field": "image_base64",
    }
    assert Frame.objects.count() == 0


def test_a_missing_model_answers_503_naming_the_command(make_org, tmp_path):
    organization, _, client = make_org("facenet-org", model="Facenet")
    person = Person.objects.create(organization=organization, name="Ada")
    with override_settings(DEEPFACE_HOME=tmp_path):
        for url in (f"/api/v1/people/{person.pk}/faces/", "/api/v1/frames/", "/api/v1/identify/", "/api/v1/detect/"):
            response = client.post(url, upload("a.jpg", photo_bytes("img1.jpg")), format="multipart")
            assert response.status_code == 503
            assert error(response)["code"] == "model_unavailable"
            assert "python manage.py provision_models --model Facenet" in error(response)["message"]
    assert FaceImage.objects.count() == 0 and Frame.objects.count() == 0


def test_another_organizations_ids_are_not_found_and_leak_nothing(org_a, org_b):
    organization_b, _, client_b = org_b
    _, _, client_a = org_a
    person_b = Person.objects.create(organization=organization_b, name="Bea")
    camera_b = Camera.objects.create(organization=organization_b, name="door-b")
    frame = client_b.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart").json()
    face = FaceImage.objects.create(organization=organization_b, person=person_b, image="x.jpg")

    image = photo_bytes("img1.jpg")
    for response in (
        client_a.get(f"/api/v1/people/{person_b.pk}/"),
        client_a.patch(f"/api/v1/people/{person_b.pk}/", {"name": "stolen"}, format="json"),
        client_a.delete(f"/api/v1/people/{person_b.pk}/"),
        client_a.get(f"/api/v1/people/{person_b.pk}/faces/"),
        client_a.post(f"/api/v1/people/{person_b.pk}/faces/", upload("a.jpg", image), format="multipart"),
        client_a.delete(f"/api/v1/people/{person_b.pk}/faces/{face.pk}/"),
        client_a.get(f"/api/v1/frames/{frame['id']}/"),
        client_a.post("/api/v1/frames/", {**upload("a.jpg", image), "camera": camera_b.pk}, format="multipart"),
        client_a.post("/api/v1/verify/", {**upload("a.jpg", image), "person": person_b.pk}, format="multipart"),
        client_a.get(f"/api/v1/cameras/{camera_b.pk}/"),
        client_a.patch(f"/api/v1/cameras/{camera_b.pk}/", {"name": "x"}, format="json"),
        client_a.get("/api/v1/people/99999/"),
        client_a.get("/api/v1/cameras/99999/"),
    ):
        assert response.status_code == 404, response.content
        assert error(response)["code"] == "not_found"
        assert "Bea" not in response.content.decode() and "door-b" not in response.content.decode()
    assert client_a.get("/api/v1/people/?search=Bea").json()["results"] == []
    assert client_a.get("/api/v1/cameras/").json()["results"] == []
    assert client_a.get("/api/v1/sightings/").json()["results"] == []
    assert Person.objects.get(pk=person_b.pk).name == "Bea"
    assert Frame.objects.filter(organization__slug="org-a").count() == 0


def test_cameras_crud(org_a):
    _, _, client = org_a
    camera = client.post("/api/v1/cameras/", {"name": "door", "location": "hall"}, format="json")
    assert camera.status_code == 201
    camera_id = camera.json()["id"]
    duplicate = client.post("/api/v1/cameras/", {"name": "door"}, format="json")
    assert duplicate.status_code == 409 and error(duplicate)["code"] == "duplicate"
    assert (
        client.patch(f"/api/v1/cameras/{camera_id}/", {"location": "lobby"}, format="json").json()["location"]
        == "lobby"
    )
    assert [c["name"] for c in client.get("/api/v1/cameras/").json()["results"]] == ["door"]
    assert client.delete(f"/api/v1/cameras/{camera_id}/").status_code == 204
    assert client.get(f"/api/v1/cameras/{camera_id}/").status_code == 404


def test_frame_is_accepted_and_queued(org_a):
    _, _, client = org_a
    response = client.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/frames/{body['id']}/")
    assert client.get(f"/api/v1/frames/{body['id']}/").json()["status"] == "queued"


def test_throttling_per_key_answers_429_with_retry_after(org_a):
    _, _, client = org_a
    with override_settings(API_RATE_PER_KEY="3/min"):
        statuses = [client.get("/api/v1/people/").status_code for _ in range(4)]
        response = client.get("/api/v1/people/")
    assert statuses == [200, 200, 200, 429]
    assert error(response)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_throttling_per_organization_counts_all_its_keys(org_a):
    organization, _, client = org_a
    _, second_key = api_key_create(organization=organization)
    with override_settings(API_RATE_PER_ORGANIZATION="2/min"):
        assert client.get("/api/v1/people/").status_code == 200
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {second_key}")
        assert client.get("/api/v1/people/").status_code == 200
        assert client.get("/api/v1/people/").status_code == 429


def test_backpressure_refuses_frames_past_the_queue_bound(org_a):
    _, _, client = org_a
    with override_settings(API_MAX_QUEUED_FRAMES=2):
        statuses = [
            client.post("/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart")
            for _ in range(3)
        ]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert error(statuses[-1])["code"] == "queue_full"
    assert int(statuses[-1]["Retry-After"]) > 0
    assert Frame.objects.count() == 2


def test_a_retry_with_the_same_idempotency_key_is_answered_with_what_the_first_made(org_a):
    organization, _, client = org_a
    image = photo_bytes("img20.jpg")
    first = client.post("/api/v1/frames/", upload("a.jpg", image), format="multipart", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/frames/", upload("a.jpg", image), format="multipart", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Frame.objects.count() == 1
    other = client.post(
        "/api/v1/frames/", upload("b.jpg", photo_bytes("img21.jpg")), format="multipart", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 400 and error(other)["code"] == "idempotency_key_reused"

    person = Person.objects.create(organization=organization, name="Ada")
    url = f"/api/v1/people/{person.pk}/faces/"
    faces = [client.post(url, upload("a.jpg", image), format="multipart", HTTP_IDEMPOTENCY_KEY="k-1") for _ in range(2)]
    assert faces[0].json() == faces[1].json()
    assert FaceImage.objects.count() == 1


def test_a_failed_request_does_not_burn_its_idempotency_key(org_a):
    _, _, client = org_a
    bad = client.post("/api/v1/frames/", upload("a.jpg", b"text"), format="multipart", HTTP_IDEMPOTENCY_KEY="k-2")
    assert bad.status_code == 400
    good = client.post(
        "/api/v1/frames/", upload("a.jpg", photo_bytes("img20.jpg")), format="multipart", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert good.status_code == 202


def test_openapi_schema_and_offline_docs(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/identify/", "/api/v1/verify/", "/api/v1/detect/", "/api/v1/sightings/", "/api/v1/cameras/"):
        assert path in paths
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs


def test_person_photos_can_be_listed_and_deleted_with_their_files(org_a, django_capture_on_commit_callbacks):
    organization, _, client = org_a
    person = client.post("/api/v1/people/", {"name": "Ada"}, format="json").json()
    added = client.post(
        f"/api/v1/people/{person['id']}/faces/", upload("a.jpg", photo_bytes("img1.jpg")), format="multipart"
    )
    face_image = FaceImage.objects.get(pk=added.json()["id"])
    path = face_image.image.path
    assert open(path, "rb").read() == photo_bytes("img1.jpg")
    assert [f["id"] for f in client.get(f"/api/v1/people/{person['id']}/faces/").json()] == [face_image.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/v1/people/{person['id']}/faces/{face_image.pk}/")
    assert response.status_code == 204
    assert not FaceImage.objects.filter(pk=face_image.pk).exists()
    assert not os.path.exists(path)


def test_reports_and_media_of_another_organization_are_not_found():
    from rest_framework.test import APIClient

    from tests.tenants import make_tenant

    a, b = make_tenant("api-a", "Ann", "door-a"), make_tenant("api-b", "Bob", "door-b", "img13.jpg")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.raw_key}")
    assert client.get(f"/api/v1/sightings/{b.sighting.pk}/").status_code == 404
    own = client.get(f"/api/v1/sightings/{a.sighting.pk}/").json()
    assert own["face"]["person"]["name"] == "Ann"
    assert [s["id"] for s in client.get("/api/v1/sightings/").json()["results"]] == [a.sighting.pk]
    assert client.get(f"/media/{b.sighting.crop.name}").status_code == 404
    assert client.get(own["crop_url"]).status_code == 200
    assert APIClient().get(own["crop_url"]).status_code == 404  # no credentials, no file


def test_erasure_through_the_api_is_audited(org_a):
    from apps.core.models import AuditEvent

    organization, raw_key, client = org_a
    person = client.post("/api/v1/people/", {"name": "Ada"}, format="json").json()
    assert client.delete(f"/api/v1/people/{person['id']}/").status_code == 204
    event = AuditEvent.objects.get(organization=organization, action="erased")
    assert event.api_key_prefix == raw_key.split(".")[0] and event.target_repr == "Ada"


def test_another_persons_photo_is_not_found_and_stays(org_a):
    _, _, client = org_a
    ada = client.post("/api/v1/people/", {"name": "Ada"}, format="json").json()
    bob = client.post("/api/v1/people/", {"name": "Bob"}, format="json").json()
    added = client.post(
        f"/api/v1/people/{bob['id']}/faces/", upload("b.jpg", photo_bytes("img1.jpg")), format="multipart"
    )
    response = client.delete(f"/api/v1/people/{ada['id']}/faces/{added.json()['id']}/")
    assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert FaceImage.objects.filter(pk=added.json()["id"], person_id=bob["id"]).exists()


def test_deleting_a_camera_is_audited(org_a):
    from apps.core.models import AuditEvent

    organization, raw_key, client = org_a
    camera = client.post("/api/v1/cameras/", {"name": "door"}, format="json").json()
    assert client.delete(f"/api/v1/cameras/{camera['id']}/").status_code == 204
    event = AuditEvent.objects.get(organization=organization, action="deleted", target_type="organizations.Camera")
    assert event.api_key_prefix == raw_key.split(".")[0] and event.target_repr == "door"


def test_a_patch_writes_only_the_fields_it_names(org_a):
    """Two clients patching different fields of one row at once both keep their change."""
    organization, _, client = org_a
    person = client.post("/api/v1/people/", {"name": "Ada", "external_id": "e-1"}, format="json").json()
    camera = client.post("/api/v1/cameras/", {"name": "door", "location": "hall"}, format="json").json()
    # Another writer changes the other field after this request loaded its row.
    stale_person, stale_camera = Person.objects.get(pk=person["id"]), Camera.objects.get(pk=camera["id"])
    Person.objects.filter(pk=person["id"]).update(external_id="e-2")
    Camera.objects.filter(pk=camera["id"]).update(location="lobby")
    from apps.gallery.services import person_update
    from apps.organizations.services import camera_update

    person_update(person=stale_person, name="Ada L.")
    camera_update(camera=stale_camera, name="front door")
    assert Person.objects.values_list("name", "external_id").get(pk=person["id"]) == ("Ada L.", "e-2")
    assert Camera.objects.values_list("name", "location").get(pk=camera["id"]) == ("front door", "lobby")
