"""A person's own data as one archive: every row and file held about them, nothing about
anyone else — two organizations, and two people in one of them seen in the same frame."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import AuditEvent
from apps.gallery.models import Person
from apps.gallery.services import consent_record
from apps.sightings.models import CheckIn
from apps.sightings.services import visit_assign
from tests.faces import photo_bytes
from tests.factories import SightingFactory
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db


def read(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_holds_every_row_and_file_about_the_person_and_nothing_about_anyone_else():
    a = make_tenant("alpha", "Ann Alpha", "alpha-door")
    b = make_tenant("beta", "Bob Beta", "beta-door", "img13.jpg")
    ann = a.person
    # Carl, seen beside Ann in her frame, with a crop of his own.
    carl = Person.objects.create(organization=a.organization, name="Carl Other")
    carls = SightingFactory.build(organization=a.organization, frame=a.frame, person=carl, box_w=10, box_h=10)
    carls.crop.save("carl-crop.jpg", ContentFile(photo_bytes("img13.jpg")), save=False)
    carls.save()
    consent = consent_record(
        person=ann, method="paper", purpose="door access", document=ContentFile(b"%PDF-1.4 signed", name="form.pdf")
    )
    visit_assign(organization=a.organization, sighting=a.sighting)
    check_in = CheckIn(
        organization=a.organization,
        camera=a.camera,
        direction="left",
        person=ann,
        started_at=timezone.now(),
        outcome=CheckIn.Outcome.PASSED,
    )
    check_in.image.save("start.jpg", ContentFile(photo_bytes("img2.jpg")))

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.raw_key}")
    archive = read(client.get(f"/api/v1/people/{ann.pk}/export/"))

    expected = {
        "person.json": None,
        f"photos/{a.face_image.pk}.jpg": a.face_image.image.path,
        f"consent/{consent.pk}.pdf": consent.document.path,
        f"sightings/{a.sighting.pk}.jpg": a.sighting.crop.path,
        f"check-ins/{check_in.pk}.jpg": check_in.image.path,
    }
    assert set(archive.namelist()) == set(expected)
    for name, path in expected.items():
        if path:
            assert archive.read(name) == Path(path).read_bytes(), name
    record = json.loads(archive.read("person.json"))
    assert record["person"]["id"] == ann.pk and record["person"]["name"] == "Ann Alpha"
    assert [c["id"] for c in record["consents"]] == [consent.pk]
    assert [p["id"] for p in record["photos"]] == [a.face_image.pk]
    assert [e["face_image_id"] for e in record["embeddings"]] == [a.face_image.pk]
    assert len(record["embeddings"][0]["vector"]) == 128
    assert [s["id"] for s in record["sightings"]] == [a.sighting.pk]
    assert len(record["visits"]) == 1 and len(record["attendance"]) == 1
    assert record["attendance"][0]["person_id"] == ann.pk
    assert [c["id"] for c in record["check_ins"]] == [check_in.pk]
    assert [e["action"] for e in record["audit_events"]] == ["consent_recorded"]
    text = archive.read("person.json").decode()
    for other in ("Carl", "carl-crop", "Bob", "beta"):
        assert other not in text, other
    assert carls.pk not in {s["id"] for s in record["sightings"]}
    (exported,) = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED)
    assert exported.organization_id == a.organization.pk and exported.target_id == str(ann.pk)

    # Another organization's key: the same 404 as a person who does not exist.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {b.raw_key}")
    assert other.get(f"/api/v1/people/{ann.pk}/export/").status_code == 404

    # The admin's action gives the same archive.
    browser = Client()
    browser.force_login(a.owner)
    from_admin = read(browser.post("/admin/gallery/person/", {"action": "export", "_selected_action": [ann.pk]}))
    assert set(from_admin.namelist()) == set(expected)
