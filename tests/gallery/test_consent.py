"""Consent before enrollment, for real: an organization that requires it stores no photo
and no embedding of a person without it, by any way in (API, admin, zip import, stranger
promotion); withdrawing it erases the person's biometric data, rows and files, at once,
and leaves the other organization's untouched. The real Dlib model, in this process."""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import AuditEvent
from apps.frames import services as recognition
from apps.gallery.models import Consent, FaceEmbedding, FaceImage, GalleryImport, Person
from apps.gallery.services import (
    consent_given,
    consent_record,
    face_image_enroll,
    gallery_import_run,
    gallery_import_start,
)
from apps.organizations.models import Membership
from apps.recognition.models import Frame
from apps.sightings.models import CheckIn, Sighting, StrangerProfile
from tests.faces import photo_bytes
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db

CONSENT = {"method": "paper", "purpose": "attendance at the office"}


@pytest.fixture
def requiring(org_a):
    organization, _, client = org_a
    organization.require_consent = True
    organization.save()
    return organization, client


def embeddings_of(person_id: int) -> int:
    return FaceEmbedding.objects.filter(person_id=person_id).count()


def test_with_consent_required_the_api_stores_no_photo_until_consent_is_recorded(requiring):
    organization, client = requiring
    person = client.post("/api/v1/people/", {"name": "Ann"}, format="json").json()
    assert person["consent"] == "none"
    refused = client.post(
        f"/api/v1/people/{person['id']}/faces/", {"image": io.BytesIO(photo_bytes("img1.jpg"))}, format="multipart"
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "consent_required", refused.content
    assert FaceImage.objects.filter(person_id=person["id"]).count() == 0

    bad = client.post(f"/api/v1/people/{person['id']}/consents/", {"method": "shrug", "purpose": "x"}, format="json")
    assert bad.status_code == 400
    given = client.post(f"/api/v1/people/{person['id']}/consents/", CONSENT, format="json")
    assert given.status_code == 201 and given.json()["method"] == "paper", given.content
    assert client.get(f"/api/v1/people/{person['id']}/").json()["consent"] == "given"
    accepted = client.post(
        f"/api/v1/people/{person['id']}/faces/", {"image": io.BytesIO(photo_bytes("img1.jpg"))}, format="multipart"
    )
    assert accepted.status_code == 202
    assert face_image_enroll(face_image_id=accepted.json()["id"]).status == FaceImage.Status.ENROLLED
    assert embeddings_of(person["id"]) == 1
    (recorded,) = AuditEvent.objects.filter(action=AuditEvent.Action.CONSENT_RECORDED)
    assert recorded.api_key_prefix and recorded.target_id == str(person["id"])


def test_with_consent_required_admin_import_and_promotion_store_nothing_without_it(requiring, django_user_model):
    organization, client = requiring
    admin_user = django_user_model.objects.create_user("consent-admin", password="x", is_staff=True)
    Membership.objects.create(organization=organization, user=admin_user, role="admin")
    browser = Client()
    browser.force_login(admin_user)

    # Admin: a new person with photos and no consent gets none of them stored...
    page = browser.post(
        "/admin/gallery/person/add/",
        {
            "name": "Bea",
            "external_id": "",
            "photos": [io.BytesIO(photo_bytes("img1.jpg"))],
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "face_images-TOTAL_FORMS": "0",
            "face_images-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    bea = Person.objects.get(name="Bea")
    assert "consent is recorded" in page.content.decode() and bea.face_images.count() == 0
    # ... and with the consent in the same form, they are.
    browser.post(
        "/admin/gallery/person/add/",
        {
            "name": "Cid",
            "external_id": "",
            "photos": [io.BytesIO(photo_bytes("img2.jpg"))],
            "consents-TOTAL_FORMS": "1",
            "consents-INITIAL_FORMS": "0",
            "consents-0-given_at_0": timezone.now().strftime("%Y-%m-%d"),
            "consents-0-given_at_1": timezone.now().strftime("%H:%M:%S"),
            "consents-0-method": "form",
            "consents-0-purpose": "door access",
            "face_images-TOTAL_FORMS": "0",
            "face_images-INITIAL_FORMS": "0",
        },
    )
    cid = Person.objects.get(name="Cid")
    assert cid.consents.get().recorded_by == admin_user and cid.face_images.count() == 1

    # Import: consent.csv names one of the two folders.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("Dee/a.jpg", photo_bytes("img13.jpg"))
        zipped.writestr("Eve/a.jpg", photo_bytes("img20.jpg"))
        zipped.writestr(
            "consent.csv", "person,method,purpose,given_at\nDee,contract,staff badge,2026-11-30T09:00:00Z\n"
        )
    job = gallery_import_run(
        job_id=gallery_import_start(organization=organization, archive=archive.getvalue(), user=admin_user).pk
    )
    assert job.status == GalleryImport.Status.DONE and job.photos_added == 1
    assert [problem["error"] for problem in job.problems] == ["consent_required"]
    assert Person.objects.get(name="Dee").face_images.count() == 1
    assert Person.objects.get(name="Eve").face_images.count() == 0

    # Stranger promotion: a face nobody knows becomes a profile; promoting it needs consent.
    frame = recognition.frame_create(organization=organization, data=photo_bytes("img14.jpg"))
    recognition.frame_process(frame_id=frame.pk)
    profile = StrangerProfile.objects.get(organization=organization)
    refused = client.post(f"/api/v1/strangers/{profile.pk}/promote/", {"name": "Fay"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "consent_required"
    assert not Person.objects.filter(name="Fay").exists()
    promoted = client.post(
        f"/api/v1/strangers/{profile.pk}/promote/", {"name": "Fay", "consent": CONSENT}, format="json"
    )
    assert promoted.status_code == 201, promoted.content
    assert promoted.json()["consent"] == "given" and FaceImage.objects.filter(person__name="Fay").count() == 1

    # Nobody without consent has an embedding, after every photo was embedded.
    for face_image in FaceImage.objects.filter(organization=organization):
        face_image_enroll(face_image_id=face_image.pk)
    without = [p for p in Person.objects.filter(organization=organization) if consent_given(p) is None]
    assert {person.name for person in without} == {"Bea", "Eve"}
    assert FaceEmbedding.objects.filter(person__in=without).count() == 0
    assert FaceEmbedding.objects.filter(organization=organization).count() == 3


@pytest.mark.django_db(transaction=True)
def test_withdrawing_consent_erases_the_persons_biometric_data_at_once():
    a = make_tenant("alpha", "Ann Alpha", "alpha-door")
    b = make_tenant("beta", "Bob Beta", "beta-door", "img13.jpg")
    consent = consent_record(person=a.person, **CONSENT)
    consent_record(person=b.person, **CONSENT)
    check_in = CheckIn(
        organization=a.organization, camera=a.camera, direction="left", person=a.person, started_at=timezone.now()
    )
    check_in.image.save("start.jpg", ContentFile(photo_bytes("img1.jpg")))
    files = [*a.files(), check_in.image.path]
    assert all(Path(f).exists() for f in files)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.raw_key}")
    answer = client.post(f"/api/v1/people/{a.person.pk}/consents/{consent.pk}/withdraw/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["erased"] == {"photos": 1, "sightings": 1, "frames": 1, "check_in_photos": 1}
    assert answer.json()["consent"]["withdrawn_at"]

    assert FaceImage.objects.filter(person=a.person).count() == 0
    assert FaceEmbedding.objects.filter(person=a.person).count() == 0
    assert Sighting.objects.filter(person=a.person).count() == 0
    assert not Frame.objects.filter(pk=a.frame.pk).exists()
    check_in.refresh_from_db()
    assert not check_in.image
    assert [f for f in files if Path(f).exists()] == []
    # What stays: the person, the consent record (withdrawn), the audit trail.
    assert Consent.objects.get(pk=consent.pk).withdrawn_at is not None
    assert client.get(f"/api/v1/people/{a.person.pk}/").json()["consent"] == "withdrawn"
    (withdrawn,) = AuditEvent.objects.filter(action=AuditEvent.Action.CONSENT_WITHDRAWN)
    assert withdrawn.organization_id == a.organization.pk and withdrawn.detail["erased"]["photos"] == 1
    # The other organization's person is untouched, files included.
    assert FaceEmbedding.objects.filter(person=b.person).count() == 1
    assert all(Path(f).exists() for f in b.files())
    # Withdrawn twice: a clear conflict, nothing more erased.
    again = client.post(f"/api/v1/people/{a.person.pk}/consents/{consent.pk}/withdraw/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_withdrawn"
    # Another organization's key cannot even see it.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {b.raw_key}")
    assert other.post(f"/api/v1/people/{a.person.pk}/consents/{consent.pk}/withdraw/").status_code == 404
