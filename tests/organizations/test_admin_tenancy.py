"""Django admin for organization staff: only their organization's rows, anywhere."""

import io
import os
import zipfile
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.gallery.models import FaceImage, GalleryImport, Person
from apps.gallery.services import gallery_import_run
from apps.organizations.models import ApiKey, Camera, Membership, Organization
from apps.organizations.services import api_key_authenticate
from apps.recognition.models import Frame
from apps.sightings.models import Sighting
from apps.sightings.services import retention_purge
from tests.faces import photo_bytes
from tests.factories import FrameFactory, SightingFactory
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "gallery/person",
    "organizations/camera",
    "organizations/apikey",
    "organizations/membership",
    "organizations/organization",
    "recognition/frame",
    "sightings/sighting",
    "sightings/visit",
    "sightings/strangerprofile",
    "sightings/correction",
    "sightings/checkin",
    "sightings/watchlistentry",
    "webhooks/webhooksubscription",
    "webhooks/webhookdelivery",
    "gallery/galleryimport",
    "core/auditevent",
]


@pytest.fixture
def tenants():
    return make_tenant("alpha", "Ann Alpha", "alpha-door"), make_tenant("beta", "Bob Beta", "beta-door", "img13.jpg")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_changelists_show_only_the_organizations_rows(tenants):
    a, b = tenants
    client = login(a.owner)
    for page in CHANGELISTS:
        response = client.get(f"/admin/{page}/")
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "Bob Beta" not in html and "beta-door" not in html and "BETA" not in html, page
    assert "Ann Alpha" in client.get("/admin/gallery/person/").content.decode()
    assert "1 person" in client.get("/admin/gallery/person/").content.decode()
    assert client.get("/admin/gallery/person/?q=Bob").context["cl"].result_count == 0
    # Related filters list only this organization's cameras and people.
    assert "beta-door" not in client.get("/admin/sightings/sighting/").content.decode()


def test_another_organizations_ids_are_404(tenants):
    a, b = tenants
    client = login(a.owner)
    for url in (
        f"/admin/gallery/person/{b.person.pk}/change/",
        f"/admin/gallery/person/{b.person.pk}/delete/",
        f"/admin/organizations/camera/{b.camera.pk}/change/",
        f"/admin/organizations/apikey/{ApiKey.objects.get(organization=b.organization).pk}/change/",
        f"/admin/organizations/organization/{b.organization.pk}/change/",
        f"/admin/sightings/sighting/{b.sighting.pk}/change/",
        f"/admin/recognition/frame/{b.frame.pk}/change/",
        "/admin/gallery/person/999999/change/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Bob" not in response.content.decode()
    assert client.get(f"/media/{b.face_image.image.name}").status_code == 404
    assert client.get(f"/media/{a.face_image.image.name}").status_code == 200


def test_autocomplete_and_choices_are_scoped(tenants):
    a, b = tenants
    client = login(a.owner)
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "organizations", "model_name": "apikey", "field_name": "camera", "term": ""},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["alpha-door"]
    form = client.get("/admin/organizations/apikey/add/").content.decode()
    assert "beta-door" not in form


def test_saving_cannot_move_a_row_to_another_organization(tenants):
    a, b = tenants
    client = login(a.owner)
    response = client.post(
        f"/admin/gallery/person/{a.person.pk}/change/",
        {
            "name": "Ann A.",
            "external_id": "",
            "organization": b.organization.pk,
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "face_images-TOTAL_FORMS": "1",
            "face_images-INITIAL_FORMS": "1",
            "face_images-0-id": a.face_image.pk,
            "face_images-0-person": a.person.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    a.person.refresh_from_db()
    assert a.person.name == "Ann A." and a.person.organization_id == a.organization.pk
    response = client.post(
        "/admin/organizations/camera/add/", {"name": "new", "location": "", "organization": b.organization.pk}
    )
    assert response.status_code == 302
    assert Camera.objects.get(name="new").organization_id == a.organization.pk


def test_roles(tenants):
    a, _ = tenants
    viewer = login(a.viewer)
    assert viewer.get("/admin/gallery/person/").status_code in (302, 403)
    admin = login(a.admin)
    assert admin.get("/admin/gallery/person/").status_code == 200
    assert admin.get("/admin/core/auditevent/").status_code == 403  # the audit log is for owners
    assert admin.get("/admin/organizations/membership/").status_code == 403
    owner = login(a.owner)
    assert owner.get("/admin/core/auditevent/").status_code == 200
    assert owner.get("/admin/organizations/organization/add/").status_code == 403  # platform only


def test_a_user_in_two_organizations_switches_between_them(tenants):
    a, b = tenants
    Membership.objects.create(organization=b.organization, user=a.owner, role="owner")
    client = login(a.owner)
    first = client.get("/admin/gallery/person/").content.decode()
    response = client.post("/admin/switch-organization/", {"organization": b.organization.pk, "next": "/admin/"})
    assert response.status_code == 302
    second = client.get("/admin/gallery/person/").content.decode()
    assert ("Ann Alpha" in first) != ("Ann Alpha" in second) and ("Bob Beta" in first) != ("Bob Beta" in second)
    other = make_tenant("gamma", "Gus", "gamma-door")
    assert client.post("/admin/switch-organization/", {"organization": other.organization.pk}).status_code == 404


def test_api_keys_from_admin_are_shown_once_and_revocable(tenants):
    a, _ = tenants
    client = login(a.owner)
    response = client.post(
        "/admin/organizations/apikey/add/", {"name": "kiosk", "scopes": ["frames:write"]}, follow=True
    )
    message = next(str(m) for m in response.context["messages"] if "shown only once" in str(m))
    raw_key = message.rsplit(" ", 1)[-1]
    api_key = api_key_authenticate(raw_key)
    assert api_key.organization == a.organization and api_key.scopes == ["frames:write"]
    assert raw_key.split(".", 1)[1] not in ApiKey.objects.get(pk=api_key.pk).hashed_key
    client.post("/admin/organizations/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    assert api_key_authenticate(raw_key) is None
    actions = set(AuditEvent.objects.filter(organization=a.organization).values_list("action", flat=True))
    assert {"api_key_created", "api_key_revoked"} <= actions


def test_a_kiosk_key_from_admin_has_the_kiosk_scope_alone_and_a_camera(tenants):
    a, b = tenants
    client = login(a.owner)
    door = Camera.objects.get(organization=a.organization)
    for scopes, camera, error in [
        (["kiosk:check-in"], "", "tied to one camera"),
        (["kiosk:check-in", "reports:read"], door.pk, "the kiosk scope alone"),
    ]:
        refused = client.post("/admin/organizations/apikey/add/", {"name": "kiosk", "scopes": scopes, "camera": camera})
        assert refused.status_code == 200 and error in refused.content.decode(), scopes
    beta_door = Camera.objects.get(organization=b.organization)
    foreign = client.post(
        "/admin/organizations/apikey/add/", {"name": "kiosk", "scopes": ["kiosk:check-in"], "camera": beta_door.pk}
    )
    assert foreign.status_code == 200 and not ApiKey.objects.filter(camera=beta_door).exists()
    made = client.post(
        "/admin/organizations/apikey/add/", {"name": "kiosk", "scopes": ["kiosk:check-in"], "camera": door.pk}
    )
    assert made.status_code == 302
    assert ApiKey.objects.get(camera=door).scopes == ["kiosk:check-in"]


def test_erasing_a_person_deletes_photos_embeddings_sightings_and_files(tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    files = a.files()
    assert all(os.path.exists(f) for f in files)
    client = login(a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/gallery/person/{a.person.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Person.objects.filter(pk=a.person.pk).exists()
    assert not FaceImage.objects.filter(person_id=a.person.pk).exists()
    assert not Sighting.objects.filter(person_id=a.person.pk).exists()
    assert [f for f in files[:1] + files[2:] if os.path.exists(f)] == []  # photo and crop
    assert all(os.path.exists(f) for f in b.files())
    erasure = AuditEvent.objects.get(organization=a.organization, action="erased")
    assert erasure.user == a.owner and erasure.target_repr == "Ann Alpha"


def test_deleting_an_organization_deletes_everything_it_owns(tenants, admin_client, django_capture_on_commit_callbacks):
    a, b = tenants
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/organizations/organization/{a.organization.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Organization.objects.filter(pk=a.organization.pk).exists()
    for model in (Person, FaceImage, Sighting, ApiKey):
        assert not model.objects.filter(organization_id=a.organization.pk).exists()
    assert [f for f in a.files() if os.path.exists(f)] == []
    assert all(os.path.exists(f) for f in b.files())


def test_retention_purges_old_sightings_and_unknown_faces(django_capture_on_commit_callbacks):
    now = timezone.now()
    old = make_tenant("keep", "Kim", "cam", seen_at=now - timedelta(days=100))
    organization = old.organization
    organization.sighting_retention_days, organization.unknown_retention_days = 90, 30
    organization.save()
    # 40 days old: a known person (kept, under 90 days) and a stranger (purged, over 30).
    forty_days = now - timedelta(days=40)
    frame = FrameFactory(organization=organization, captured_at=forty_days, image="org_x/frames/a.jpg")
    known = SightingFactory(organization=organization, frame=frame, person=old.person, box_w=1, box_h=1)
    stranger = SightingFactory(organization=organization, frame=frame, person=None, box_x=5, box_w=1, box_h=1)
    other = make_tenant("other", "Oli", "cam2", seen_at=now - timedelta(days=100))
    with django_capture_on_commit_callbacks(execute=True):
        purged = retention_purge(organization=organization, now=now)
    assert purged == {"frames": 1, "sightings": 2}  # the old frame with its sighting, and the stranger
    assert not Sighting.objects.filter(pk__in=[old.sighting.pk, stranger.pk]).exists()
    assert Sighting.objects.filter(pk=known.pk).exists() and Frame.objects.filter(pk=frame.pk).exists()
    assert [f for f in [old.frame.image.path, old.sighting.crop.path] if os.path.exists(f)] == []
    assert Sighting.objects.filter(pk=other.sighting.pk).exists()  # another organization's, untouched
    assert AuditEvent.objects.filter(organization=organization, action="retention_purged").exists()


def test_gallery_zip_import_creates_people_and_reports_progress(tenants, django_capture_on_commit_callbacks):
    a, _ = tenants
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("Jane/one.jpg", photo_bytes("img20.jpg"))
        zipped.writestr("Jane/two.jpg", photo_bytes("img21.jpg"))
        zipped.writestr("Ann Alpha/three.jpg", photo_bytes("img2.jpg"))
        zipped.writestr("Jane/notes.txt", b"ignored")
        zipped.writestr("Jane/broken.jpg", b"not an image")
    client = login(a.owner)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/admin/gallery/person/import/", {"archive": io.BytesIO(archive.getvalue())})
    assert response.status_code == 302
    job = GalleryImport.objects.get(organization=a.organization)
    assert (job.status, job.total, job.processed) == ("queued", 4, 0)
    page = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in page and "0 / 4" in page
    job = gallery_import_run(job_id=job.pk)
    assert (job.status, job.processed, job.people_created, job.photos_added) == ("done", 4, 1, 3)
    assert [p["file"] for p in job.problems] == ["Jane/broken.jpg"]
    assert Person.objects.get(organization=a.organization, name="Jane").face_images.count() == 2
    assert Person.objects.get(pk=a.person.pk).face_images.count() == 2
    assert "4 / 4" in client.get(response["Location"]).content.decode()


def test_person_admin_multi_upload_thumbnails_counts_and_re_embed(tenants, django_capture_on_commit_callbacks):
    a, _ = tenants
    client = login(a.owner)
    photos = [io.BytesIO(photo_bytes("img20.jpg")), io.BytesIO(photo_bytes("img21.jpg"))]
    for index, photo in enumerate(photos):
        photo.name = f"p{index}.jpg"
    response = client.post(
        "/admin/gallery/person/add/",
        {
            "name": "Jane",
            "external_id": "",
            "photos": photos,
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "face_images-TOTAL_FORMS": "0",
            "face_images-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    jane = Person.objects.get(organization=a.organization, name="Jane")
    assert jane.face_images.count() == 2
    page = client.get(f"/admin/gallery/person/{jane.pk}/change/").content.decode()
    assert page.count(f'src="/media/org_{a.organization.pk}/gallery/{jane.pk}/') == 2
    listing = client.get("/admin/gallery/person/").content.decode()
    assert "Jane" in listing
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post("/admin/gallery/person/", {"action": "re_embed", "_selected_action": [jane.pk]})
    assert len(queued) == 2


def test_the_switcher_lists_only_the_users_organizations(tenants):
    a, b = tenants
    Membership.objects.create(organization=b.organization, user=a.owner, role="admin")
    page = login(a.owner).get("/admin/").content.decode()
    assert "ALPHA (owner)" in page and "BETA (admin)" in page
