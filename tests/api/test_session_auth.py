"""The API with a signed-in member's session (what the capture page uses): CSRF enforced,
only frames:write and reports:read, the session's current organization and no other,
throttled per user and per organization; a request with an API key stays the key's."""

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from apps.frames import services as recognition
from apps.gallery.models import Person
from apps.organizations.middleware import SESSION_KEY
from apps.organizations.models import Camera, Membership
from apps.recognition.models import Frame
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db


def upload() -> dict:
    return {"image": SimpleUploadedFile("a.jpg", photo_bytes("img20.jpg"), content_type="image/jpeg")}


def error(response) -> dict:
    return response.json()["error"]


def signed_in(*organizations, username: str = "viewer") -> APIClient:
    """A browser's client: a session, and the CSRF cookie and token the capture page has."""
    user = User.objects.create_user(username)
    for organization in organizations:
        Membership.objects.create(organization=organization, user=user, role="viewer")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/capture/")  # sets the CSRF cookie
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


def test_a_session_needs_the_csrf_token_to_post(org_a):
    organization, _, _ = org_a
    client = signed_in(organization)
    client.credentials()  # the cookie, but no token
    response = client.post("/api/v1/frames/", upload(), format="multipart")
    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"
    assert "CSRF" in error(response)["message"]
    assert not Frame.objects.exists()
    assert client.get("/api/v1/sightings/").status_code == 200  # reading needs no token

    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    response = client.post("/api/v1/frames/", upload(), format="multipart")
    assert response.status_code == 202
    assert Frame.objects.get().organization == organization


def test_a_session_may_send_frames_and_read_reports_but_not_change_the_gallery(org_a):
    organization, _, _ = org_a
    person = Person.objects.create(organization=organization, name="Ann")
    camera = Camera.objects.create(organization=organization, name="door")
    client = signed_in(organization)

    assert client.post("/api/v1/frames/", {**upload(), "camera": camera.pk}, format="multipart").status_code == 202
    for url in ["/api/v1/sightings/", "/api/v1/visits/", "/api/v1/strangers/"]:
        assert client.get(url).status_code == 200, url
    refused = [
        client.get("/api/v1/people/"),
        client.post("/api/v1/people/", {"name": "Eve"}, format="json"),
        client.delete(f"/api/v1/people/{person.pk}/"),
        client.post(f"/api/v1/people/{person.pk}/faces/", upload(), format="multipart"),
        client.get("/api/v1/cameras/"),
        client.delete(f"/api/v1/cameras/{camera.pk}/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert error(refused[1]) == {
        "code": "permission_denied",
        "message": "A signed-in session may only send frames and read reports; this needs an API key.",
        "field": None,
    }
    assert list(Person.objects.values_list("name", flat=True)) == ["Ann"]
    assert Camera.objects.filter(pk=camera.pk).exists()


def test_a_session_acts_for_its_current_organization_only(org_a, org_b):
    alpha, _, _ = org_a
    beta, _, beta_client = org_b
    beta_camera = Camera.objects.create(organization=beta, name="beta door")
    beta_frame = recognition.frame_create(organization=beta, data=photo_bytes("img20.jpg"))
    client = signed_in(alpha)

    assert client.get(f"/api/v1/frames/{beta_frame.pk}/").status_code == 404
    response = client.post("/api/v1/frames/", {**upload(), "camera": beta_camera.pk}, format="multipart")
    assert response.status_code == 404 and error(response)["field"] == "camera"
    assert client.post("/api/v1/frames/", upload(), format="multipart").status_code == 202
    assert Frame.objects.filter(organization=alpha).count() == 1
    assert Frame.objects.filter(organization=beta).count() == 1
    assert beta_client.get(f"/api/v1/frames/{beta_frame.pk}/").status_code == 200

    # A member of both acts for the organization the session has chosen.
    both = signed_in(alpha, beta, username="both")
    session = both.session
    session[SESSION_KEY] = beta.pk
    session.save()
    frame_id = both.post("/api/v1/frames/", upload(), format="multipart").json()["id"]
    assert Frame.objects.get(pk=frame_id).organization == beta


def test_no_organization_no_session_no_access(org_a):
    client = signed_in(username="loner")  # signed in, a member of nothing
    response = client.post("/api/v1/frames/", upload(), format="multipart")
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"
    assert APIClient().get("/api/v1/sightings/").status_code == 401
    assert not Frame.objects.exists()


def test_a_request_with_an_api_key_is_the_keys(org_a):
    organization, raw_key, _ = org_a
    client = signed_in(organization)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")  # no CSRF token: keys need none
    response = client.post("/api/v1/people/", {"name": "Eve"}, format="json")
    assert response.status_code == 201  # the key's gallery:write, not the session's scopes


def test_sessions_are_throttled_per_user_and_per_organization(org_a, org_b):
    alpha, _, _ = org_a
    ann = signed_in(alpha, username="ann")
    bob = signed_in(alpha, username="bob")
    with override_settings(API_RATE_PER_KEY="2/min"):
        assert [ann.get("/api/v1/sightings/").status_code for _ in range(3)] == [200, 200, 429]
        assert bob.get("/api/v1/sightings/").status_code == 200  # a bucket of his own
        response = ann.get("/api/v1/sightings/")
        assert error(response)["code"] == "throttled" and int(response["Retry-After"]) > 0

    beta, _, beta_key_client = org_b
    carol = signed_in(beta, username="carol")
    with override_settings(API_RATE_PER_ORGANIZATION="2/min"):
        assert carol.get("/api/v1/sightings/").status_code == 200
        assert beta_key_client.get("/api/v1/sightings/").status_code == 200
        assert carol.get("/api/v1/sightings/").status_code == 429  # sessions and keys count together
