"""Thin tasks: each takes ids and calls the service it is named after, imported inside
the function (the service imports its task at module level)."""

from celery import shared_task

from apps.core.errors import OUTAGE_ERRORS

# Well inside the task time limit: a large gallery goes on in the next task.
REEMBED_SECONDS_PER_TASK = 60


@shared_task(acks_late=True, autoretry_for=OUTAGE_ERRORS, retry_backoff=True, max_retries=5)
def face_image_enroll_task(face_image_id: int, organization_id: int | None = None, again: bool = False) -> None:
    # organization_id: the tenant context the task runs in (project/celery.py).
    from apps.gallery.services import face_image_enroll

    face_image_enroll(face_image_id=face_image_id, again=again)


@shared_task
def face_images_requeue_stale_task() -> int:
    from apps.gallery.services import face_images_requeue_stale

    return face_images_requeue_stale()


@shared_task(acks_late=True)
def gallery_import_run_task(job_id: int, organization_id: int | None = None) -> None:
    from apps.gallery.services import gallery_import_run

    gallery_import_run(job_id=job_id)


@shared_task(acks_late=True)
def gallery_reembed_run_task(job_id: int, organization_id: int | None = None) -> None:
    from apps.gallery.services import gallery_reembed_run

    job = gallery_reembed_run(job_id=job_id, seconds=REEMBED_SECONDS_PER_TASK)
    if job.status in job.ACTIVE:
        gallery_reembed_run_task.delay(job_id, organization_id=organization_id)


@shared_task(acks_late=True)
def gallery_old_embeddings_remove_task(job_id: int, organization_id: int | None = None) -> None:
    from apps.gallery.services import gallery_old_embeddings_remove

    gallery_old_embeddings_remove(job_id=job_id)


@shared_task
def search_index_maintain_task() -> dict:
    from apps.gallery.search import search_index_maintain

    return search_index_maintain()
