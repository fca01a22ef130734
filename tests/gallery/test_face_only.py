"""An organization that keeps faces only: after enrollment the photo is replaced by its
face with room around it, the original deleted, and another model embeds the kept face
as well as the original (the real Dlib and MobileFaceNet models, in this process)."""

from pathlib import Path

import numpy as np
import pytest

from apps.gallery.models import FaceImage
from apps.gallery.services import face_image_add, face_image_embed, face_image_enroll, person_create
from apps.organizations.models import Organization
from apps.recognition.analyzers import analyzer_by_name
from apps.recognition.pipeline import catalog
from apps.recognition.pipeline.images import decode_image
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db


def cosine_distance(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_a_face_only_photo_keeps_its_face_and_serves_a_model_change(org_a, django_capture_on_commit_callbacks):
    organization = org_a[0]
    organization.enrollment_photos = Organization.EnrollmentPhotos.FACE_ONLY
    organization.save()
    person = person_create(organization=organization, name="id01")
    with django_capture_on_commit_callbacks(execute=True):
        face_image = face_image_add(person=person, data=photo_bytes("img1.jpg"))
    original_path = Path(face_image.image.path)
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = face_image_enroll(face_image_id=face_image.pk)
    assert enrolled.status == FaceImage.Status.ENROLLED and enrolled.face_only
    assert not original_path.exists()
    kept = decode_image(Path(enrolled.image.path).read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26)
    assert max(kept.shape[:2]) <= 640 < 1868  # img1 is 1,382 x 1,868
    dlib_original = enrolled.embeddings.get(model_name="Dlib")
    box = (dlib_original.box_x, dlib_original.box_y, dlib_original.box_w, dlib_original.box_h)
    assert 0 <= box[0] < box[0] + box[2] <= kept.shape[1] and 0 <= box[1] < box[1] + box[3] <= kept.shape[0]

    # The same model on the kept face: the same person by far.
    original_vector = np.array(dlib_original.embedding)
    with django_capture_on_commit_callbacks(execute=True):
        face_image_enroll(face_image_id=face_image.pk, again=True)
    again = enrolled.embeddings.get(model_name="Dlib")
    dlib_threshold = catalog.model_spec("Dlib").default_threshold
    assert cosine_distance(original_vector, again.embedding) < 0.3 * dlib_threshold
    assert FaceImage.objects.get(pk=face_image.pk).image.name == enrolled.image.name  # not cut twice

    # A model change embeds the kept face; another photo of the person matches it.
    mobilefacenet = analyzer_by_name("MobileFaceNet", "blazeface")
    assert face_image_embed(enrolled, mobilefacenet) == ""
    from_kept = enrolled.embeddings.get(model_name="MobileFaceNet").embedding
    probe = mobilefacenet.analyze(decode_image(photo_bytes("img2.jpg"), max_bytes=1 << 26, max_pixels=1 << 26))
    assert cosine_distance(from_kept, probe[0].embedding) < catalog.model_spec("MobileFaceNet").default_threshold
