"""Changing an organization's model safely: every enrolled photo re-embedded in the
background, one switch when all are done, the old embeddings removed after."""

import logging
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.gallery.models import FaceEmbedding, FaceImage, GalleryReembed, Person
from apps.gallery.services.enrollment import face_image_embed
from apps.gallery.signals import gallery_changed
from apps.gallery.tasks import (
    gallery_old_embeddings_remove_task,
    gallery_reembed_run_task,
)
from apps.organizations.models import Organization
from apps.recognition.analyzers import (
    analyzer_by_name,
    require_model,
)
from apps.recognition.pipeline import catalog

logger = logging.getLogger(__name__)

# --- Changing the organization's model -------------------------------------------------

# Frames that read the organization just before a switch still match against the old
# model's embeddings: they are deleted this long after the switch.
OLD_EMBEDDINGS_GRACE_SECONDS = 60


def gallery_reembed_start(*, organization: Organization, model_name: str, user=None) -> GalleryReembed | None:
    """Embed every enrolled photo again with `model_name`, in the background; matching
    switches to it when all are done. None when it is the model in use already (a
    change under way to another model is cancelled)."""
    catalog.model_spec(model_name)  # ValueError for an unknown name
    require_model(model_name=model_name, detector=organization.detector)

    with transaction.atomic():
        GalleryReembed.objects.filter(organization=organization, status__in=GalleryReembed.ACTIVE).update(
            status=GalleryReembed.Status.CANCELLED, finished_at=timezone.now()
        )
        if model_name == organization.recognition_model:
            return None
        job = GalleryReembed.objects.create(
            organization=organization,
            model_name=model_name,
            previous_model=organization.recognition_model,
            total=_enrolled(organization.pk).count(),
            created_by=user,
        )
        transaction.on_commit(lambda: gallery_reembed_run_task.delay(job.pk, organization_id=organization.pk))
    return job


def _enrolled(organization_id: int):
    return FaceImage.objects.filter(organization_id=organization_id, status=FaceImage.Status.ENROLLED)


def _still_active(job: GalleryReembed) -> bool:
    return GalleryReembed.objects.filter(pk=job.pk, status__in=GalleryReembed.ACTIVE).exists()


def gallery_reembed_run(*, job_id: int, seconds: float | None = None) -> GalleryReembed:
    """In a worker: embed what is missing, then switch. Stops after about `seconds`
    with the job still running, for the task to go on in a fresh one (a task has a
    time limit, a gallery may not); a redelivered task carries on the same way."""
    started = time.monotonic()
    job = GalleryReembed.objects.select_related("organization").get(pk=job_id)
    if job.status not in GalleryReembed.ACTIVE:
        return job
    GalleryReembed.objects.filter(pk=job.pk).update(status=GalleryReembed.Status.RUNNING)
    try:
        analyzer = analyzer_by_name(job.model_name, job.organization.detector)
        # Photos enrolled during the change are embedded by their enrollment; a second
        # pass picks up any that slipped between the two.
        for _ in range(3):
            todo = _missing_photos(job)
            if not todo:
                break
            for face_image in todo:
                if not _still_active(job):
                    return job
                if seconds is not None and time.monotonic() - started > seconds:
                    job.refresh_from_db()
                    return job
                problem = face_image_embed(face_image, analyzer)
                if problem:
                    job.problems.append({"face_image": face_image.pk, "message": problem})
                GalleryReembed.objects.filter(pk=job.pk).update(processed=F("processed") + 1, problems=job.problems)
        _reembed_switch(job)
    except Exception as error:
        logger.exception("model change %s failed", job.pk)
        GalleryReembed.objects.filter(pk=job.pk).update(
            status=GalleryReembed.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


def _missing_photos(job: GalleryReembed) -> list[FaceImage]:
    problems = {entry["face_image"] for entry in job.problems}
    return list(
        _enrolled(job.organization_id)
        .exclude(embeddings__model_name=job.model_name)
        .exclude(pk__in=problems)
        .select_related("organization")
        .order_by("pk")
    )


def _reembed_switch(job: GalleryReembed) -> None:
    """Every enrolled photo has its new embedding (or a recorded problem): the
    organization matches with the new model from its next frame on."""
    with transaction.atomic():
        organization = Organization.objects.select_for_update().get(pk=job.organization_id)
        if not _still_active(job) or _missing_photos(job):
            return
        organization.recognition_model = job.model_name
        organization.save(update_fields=["recognition_model"])
        now = timezone.now()
        GalleryReembed.objects.filter(pk=job.pk).update(status=GalleryReembed.Status.DONE, switched_at=now)
        transaction.on_commit(
            lambda: gallery_old_embeddings_remove_task.apply_async(
                (job.pk,), {"organization_id": organization.pk}, countdown=OLD_EMBEDDINGS_GRACE_SECONDS
            )
        )
    gallery_changed.send(sender=Person, organization_id=organization.pk)


def gallery_old_embeddings_remove(*, job_id: int) -> int:
    """After a switch: the previous model's embeddings, unless the organization went
    back to that model meanwhile."""
    job = GalleryReembed.objects.select_related("organization").get(pk=job_id)
    removed = 0
    if job.organization.recognition_model != job.previous_model:
        removed, _ = FaceEmbedding.objects.filter(
            organization_id=job.organization_id, model_name=job.previous_model
        ).delete()
    GalleryReembed.objects.filter(pk=job.pk).update(finished_at=timezone.now())
    return removed
