"""Calibration of the threshold for a target FPIR on real photos, enrolled for real."""

import csv
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from apps.core.errors import ServiceError
from apps.frames.services import calibration_run
from apps.gallery.models import FaceImage, Person
from apps.gallery.services import face_image_enroll
from apps.recognition.models import Calibration
from apps.recognition.pipeline import calibration, catalog
from tests.faces import lfw_dir, photo_bytes

pytestmark = pytest.mark.django_db

GALLERY = {
    "id01": ["img1.jpg", "img2.jpg", "img4.jpg"],
    "id03": ["img13.jpg", "img14.jpg"],
    "id06": ["img20.jpg", "img21.jpg"],
}


def enroll_photo(organization, person, name: str, data: bytes) -> str:
    face_image = FaceImage(organization=organization, person=person)
    face_image.image.save(name, ContentFile(data), save=False)
    face_image.save()
    return face_image_enroll(face_image_id=face_image.pk).status


@pytest.fixture
def small_gallery(org_a):
    organization, _, _ = org_a
    for name, files in GALLERY.items():
        person = Person.objects.create(organization=organization, name=name)
        for file in files:
            assert enroll_photo(organization, person, file, photo_bytes(file)) == "enrolled"
    return organization


def test_a_small_gallery_takes_its_threshold_from_the_reference(small_gallery):
    assert small_gallery.threshold_source_for("Dlib") == "default"
    record = calibration_run(organization=small_gallery)
    reference = catalog.model_spec("Dlib").reference
    # 7 photos, each against the 2 other people's templates: 14 pairs, too few for a tail.
    assert (record.people, record.photos, record.impostor_pairs, record.source) == (3, 7, 14, "reference")
    tail = calibration.ImpostorTail(reference, photos_per_person=7 / 3)
    expected = calibration.threshold_for_fpir(tail, 0.01, 3, margin=small_gallery.margin)
    assert record.threshold == pytest.approx(expected)
    assert record.expected_fpir == pytest.approx(0.01, rel=0.05)
    assert 0 < record.expected_fnir < 1
    assert record.plot.read(8) == b"\x89PNG\r\n\x1a\n"
    small_gallery.refresh_from_db()
    assert small_gallery.threshold == pytest.approx(record.threshold, abs=1e-6)
    assert small_gallery.threshold_source_for("Dlib") == "calibrated"
    # A stricter target, a stricter threshold; growth needs ever stricter ones.
    strict = calibration_run(organization=small_gallery, target_fpir=0.001)
    assert strict.threshold < record.threshold
    needed = [row["threshold_for_target"] for row in record.summary["growth"]]
    assert needed == sorted(needed, reverse=True) and len(needed) == 5  # today's 3 people, then 10 ... 10,000


def test_a_larger_gallery_of_real_people_reads_its_own_tail(org_a):
    """101 people of lfw-dev with one photo each: 10,100 impostor pairs (each photo
    against the 100 others), enough for the gallery's own 10 % quantile (1,000 pairs
    below it, calibration.MIN_TAIL_PAIRS), so the reference's tail is moved to meet it."""
    organization, _, _ = org_a
    folder = lfw_dir()
    with open(folder / "labels.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    first_photos = {}
    for row in rows:
        first_photos.setdefault(row["identity"], row["file"])
    enrolled = 0
    for identity, file in first_photos.items():
        person = Person.objects.create(organization=organization, name=identity)
        if enroll_photo(organization, person, file.split("/")[-1], (folder / file).read_bytes()) == "enrolled":
            enrolled += 1
        else:  # two faces of similar size, or too small: enrollment refuses it, as it should
            person.delete()
        if enrolled == 101:
            break
    record = calibration_run(organization=organization)
    assert (record.people, record.photos, record.impostor_pairs) == (101, 101, 10100)
    assert record.source == "gallery and reference"
    assert record.summary["growth"][0]["people"] == 10 and record.expected_fpir == pytest.approx(0.01, rel=0.05)


def test_calibrate_command_and_what_the_admin_page_shows(small_gallery, admin_client):
    out = StringIO()
    call_command("calibrate", small_gallery.slug, stdout=out)
    assert "threshold" in out.getvalue() and "10,000 people" in out.getvalue()
    latest = Calibration.objects.get(organization=small_gallery)
    page = admin_client.get(f"/admin/organizations/organization/{small_gallery.pk}/change/").content.decode()
    assert latest.plot.url in page
    assert f"{latest.threshold:.4f} (Dlib, calibrated for target FPIR 0.01)" in page
    assert "enrolled people missed at it" in page
    # An explicit threshold overrides the target, and says so.
    small_gallery.refresh_from_db()
    small_gallery.match_thresholds = {"Dlib": 0.05}
    small_gallery.save()
    page = admin_client.get(f"/admin/organizations/organization/{small_gallery.pk}/change/").content.decode()
    assert f"0.0500 (Dlib, explicit: overrides the target FPIR; calibrated would be {latest.threshold:.4f})" in page


def test_a_model_without_reference_distances_keeps_its_default(make_org):
    organization, _, _ = make_org("facenet-org", model="Facenet")
    with pytest.raises(ServiceError) as error:
        calibration_run(organization=organization)
    assert error.value.code == "not_enough_data"
    assert organization.threshold == catalog.model_spec("Facenet").default_threshold


def test_the_target_fpir_must_be_a_share(small_gallery):
    with pytest.raises(ServiceError):
        calibration_run(organization=small_gallery, target_fpir=0.7)
