from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from apps.gallery.models import FaceEmbedding, FaceImage, Person
from apps.gallery.services import face_image_enroll
from apps.recognition.models import Calibration
from apps.recognition.pipeline.calibration import calibrate, cosine_distances, recommend_threshold
from apps.recognition.services import calibration_run
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db

GALLERY = {
    "id01": ["img1.jpg", "img2.jpg", "img4.jpg"],
    "id03": ["img13.jpg", "img14.jpg"],
    "id06": ["img20.jpg", "img21.jpg"],
}


@pytest.fixture
def small_gallery(org_a):
    organization, _, _ = org_a
    from django.core.files.base import ContentFile

    for name, files in GALLERY.items():
        person = Person.objects.create(organization=organization, name=name)
        for file in files:
            face_image = FaceImage(organization=organization, person=person)
            face_image.image.save(file, ContentFile(photo_bytes(file)), save=False)
            face_image.save()
            assert face_image_enroll(face_image_id=face_image.pk).status == "enrolled"
    return organization


def test_recommended_threshold_lies_between_genuine_and_impostor_distances(small_gallery):
    record = calibration_run(organization=small_gallery, target_far=0.001, apply=True)
    rows = list(FaceEmbedding.objects.filter(organization=small_gallery).values_list("person_id", "embedding"))
    vectors = np.stack([np.asarray(v) for _, v in rows])
    distances = cosine_distances(vectors, vectors)
    same = np.equal.outer([p for p, _ in rows], [p for p, _ in rows])
    upper = np.triu(np.ones_like(same), k=1).astype(bool)
    assert distances[same & upper].max() < record.threshold < distances[~same & upper].min()
    assert (record.genuine_pairs, record.impostor_pairs) == (3 + 1 + 1, 21 - 5)
    assert record.far == 0.0 and record.frr == 0.0
    assert record.plot.read(8) == b"\x89PNG\r\n\x1a\n"
    small_gallery.refresh_from_db()
    assert small_gallery.threshold == pytest.approx(record.threshold, abs=1e-6)


def test_calibrate_command_and_the_plot_on_the_admin_page(small_gallery, admin_client):
    out = StringIO()
    call_command("calibrate", small_gallery.slug, stdout=out)
    assert "not applied" in out.getvalue()
    small_gallery.refresh_from_db()
    assert small_gallery.match_thresholds == {}
    latest = Calibration.objects.get(organization=small_gallery)
    page = admin_client.get(f"/admin/organizations/organization/{small_gallery.pk}/change/").content.decode()
    assert latest.plot.url in page


def test_calibration_needs_two_people(org_a):
    from apps.core.errors import ServiceError

    with pytest.raises(ServiceError) as error:
        calibration_run(organization=org_a[0])
    assert error.value.code == "not_enough_data"


def test_threshold_never_exceeds_the_observed_impostor_quantile():
    rng = np.random.default_rng(0)
    impostor = rng.normal(0.3, 0.02, 50)
    assert recommend_threshold(impostor, 0.01) <= np.quantile(impostor, 0.01)
    result = calibrate(rng.normal(size=(6, 8)), ["a", "a", "b", "b", "c", "c"], 0.05)
    assert len(result.genuine) == 3 and len(result.impostor) == 12
