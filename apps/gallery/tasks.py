from celery import shared_task

from apps.gallery import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def enroll_face_image(face_image_id: int, organization_id: int | None = None) -> None:
    # organization_id: the tenant context the task runs in (project/celery.py).
    services.face_image_enroll(face_image_id=face_image_id)


@shared_task(acks_late=True)
def import_gallery(job_id: int, organization_id: int | None = None) -> None:
    services.gallery_import_run(job_id=job_id)
