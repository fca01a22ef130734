from celery import shared_task

from apps.gallery import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def enroll_face_image(face_image_id: int) -> None:
    services.face_image_enroll(face_image_id=face_image_id)
