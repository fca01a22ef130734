from celery import shared_task

from apps.gallery import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def enroll_face_image(face_image_id: int, organization_id: int | None = None) -> None:
    # organization_id: the tenant context the task runs in (project/celery.py).
    services.face_image_enroll(face_image_id=face_image_id)


@shared_task(acks_late=True)
def import_gallery(job_id: int, organization_id: int | None = None) -> None:
    services.gallery_import_run(job_id=job_id)


# Well inside the task time limit: a large gallery goes on in the next task.
REEMBED_SECONDS_PER_TASK = 60


@shared_task(acks_late=True)
def reembed_gallery(job_id: int, organization_id: int | None = None) -> None:
    job = services.gallery_reembed_run(job_id=job_id, seconds=REEMBED_SECONDS_PER_TASK)
    if job.status in job.ACTIVE:
        reembed_gallery.delay(job_id, organization_id=organization_id)


@shared_task(acks_late=True)
def remove_old_embeddings(job_id: int, organization_id: int | None = None) -> None:
    services.gallery_old_embeddings_remove(job_id=job_id)
