"""Changing an organization's model: every enrolled photo is embedded again in the
background; matching keeps the old model until the new gallery is complete, then
switches at once; the old embeddings go after. Real models on the shared photos."""

import pytest

from apps.frames.services import match_faces
from apps.gallery import services
from apps.gallery.models import FaceEmbedding, GalleryReembed
from apps.organizations.models import Organization
from apps.recognition.analyzers import analyzer_for
from apps.recognition.pipeline.images import decode_image
from tests.faces import photo_bytes
from tests.gallery.test_enrollment import enroll

pytestmark = pytest.mark.django_db


def recognized_person(organization, photo: str) -> int | None:
    """Who the organization's matching takes the largest face of a photo for."""
    organization = Organization.objects.get(pk=organization.pk)
    analyzer = analyzer_for(organization)
    analyzed = analyzer.analyze(decode_image(photo_bytes(photo), max_bytes=1 << 26, max_pixels=1 << 26))
    face = max(analyzed, key=lambda a: a.face.box.w * a.face.box.h)
    recognized, _ = match_faces(organization=organization, embeddings=face.embedding[None])[0]
    return None if recognized is None else recognized.person_id


def embeddings(organization, model_name: str) -> int:
    return FaceEmbedding.objects.filter(organization=organization, model_name=model_name).count()


@pytest.fixture
def gallery(org_a):
    organization, _, client = org_a
    people = {}
    for name, photo in (("id01", "img1.jpg"), ("id03", "img13.jpg")):
        people[name] = client.post("/api/v1/people/", {"name": name}, format="json").json()["id"]
        assert enroll(client, people[name], photo_bytes(photo))["status"] == "enrolled"
    return organization, client, people


def test_matching_keeps_the_old_model_until_the_new_gallery_is_complete(gallery):
    organization, client, people = gallery
    assert recognized_person(organization, "img2.jpg") == people["id01"]

    job = services.gallery_reembed_start(organization=organization, model_name="Facenet512")
    assert (job.status, job.total, job.previous_model) == ("queued", 2, "Dlib")
    # A task stopped before any photo, then a photo enrolled during the change: the new
    # gallery has one photo of three, and matching still uses Dlib's whole gallery.
    job = services.gallery_reembed_run(job_id=job.pk, seconds=0)
    assert job.status == "running" and job.processed == 0
    assert enroll(client, people["id01"], photo_bytes("img4.jpg"))["status"] == "enrolled"
    assert (embeddings(organization, "Dlib"), embeddings(organization, "Facenet512")) == (3, 1)
    assert Organization.objects.get(pk=organization.pk).recognition_model == "Dlib"
    assert recognized_person(organization, "img2.jpg") == people["id01"]

    job = services.gallery_reembed_run(job_id=job.pk)
    assert job.status == "done" and job.processed == 2 and job.problems == [] and job.switched_at
    assert Organization.objects.get(pk=organization.pk).recognition_model == "Facenet512"
    assert embeddings(organization, "Facenet512") == 3
    # The old embeddings stay a grace period for frames already in flight, then go.
    assert embeddings(organization, "Dlib") == 3
    assert services.gallery_old_embeddings_remove(job_id=job.pk) == 3
    assert embeddings(organization, "Dlib") == 0
    assert recognized_person(organization, "img2.jpg") == people["id01"]
    assert recognized_person(organization, "img14.jpg") == people["id03"]


def test_a_new_change_cancels_the_one_under_way_and_the_model_in_use_needs_none(gallery):
    organization, _, _ = gallery
    first = services.gallery_reembed_start(organization=organization, model_name="Facenet512")
    assert services.gallery_reembed_start(organization=organization, model_name="Dlib") is None
    first.refresh_from_db()
    assert first.status == "cancelled"
    # A cancelled change stops and switches nothing.
    assert services.gallery_reembed_run(job_id=first.pk).status == "cancelled"
    assert Organization.objects.get(pk=organization.pk).recognition_model == "Dlib"
    assert embeddings(organization, "Facenet512") == 0


def test_a_model_without_weights_is_refused_before_anything_starts(gallery, tmp_path, settings):
    organization, _, _ = gallery
    settings.DEEPFACE_HOME = tmp_path
    from apps.core.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="provision_models"):
        services.gallery_reembed_start(organization=organization, model_name="Facenet512")
    assert not GalleryReembed.objects.exists()


def test_changing_the_model_in_admin_starts_the_change_and_shows_its_progress(gallery, admin_client):
    organization, _, _ = gallery
    url = f"/admin/organizations/organization/{organization.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(
        recognition_model="Facenet512",
        match_thresholds="{}",
        **{
            f"{prefix}-{key}": 0
            for prefix in _inline_prefixes(admin_client, url)
            for key in ("TOTAL_FORMS", "INITIAL_FORMS")
        },
    )
    response = admin_client.post(url, data, follow=True)
    assert response.status_code == 200, response.content
    page = response.content.decode()
    assert "matching uses Dlib until all are done" in page
    assert Organization.objects.get(pk=organization.pk).recognition_model == "Dlib"
    job = GalleryReembed.objects.get(organization=organization)
    assert (job.model_name, job.status, job.total) == ("Facenet512", "queued", 2)

    services.gallery_reembed_run(job_id=job.pk)
    progress = admin_client.get(f"/admin/gallery/galleryreembed/{job.pk}/change/").content.decode()
    assert "2 / 2 (100%)" in progress
    assert "Dlib → Facenet512" in admin_client.get(url).content.decode()


def _inline_prefixes(admin_client, url) -> list[str]:
    return [formset.formset.prefix for formset in admin_client.get(url).context["inline_admin_formsets"]]
