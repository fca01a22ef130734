import logging
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ServiceError
from apps.gallery.models import FaceEmbedding, FaceImage, Person
from apps.recognition.analyzers import analyzer_for, ensure_ready
from apps.recognition.services import image_decode

logger = logging.getLogger(__name__)


def person_create(*, organization, name: str, external_id: str = "") -> Person:
    return Person.objects.create(organization=organization, name=name, external_id=external_id)


def face_image_add(*, person: Person, data: bytes) -> FaceImage:
    """Store a valid enrollment photo and queue its embedding; bad input raises
    before anything is stored."""
    ensure_ready(person.organization)
    image_decode(data)
    face_image = FaceImage(organization_id=person.organization_id, person=person)
    face_image.image.save(f"{uuid.uuid4().hex}.img", ContentFile(data), save=False)
    face_image.save()
    face_image_enqueue(face_image)
    return face_image


def face_image_enqueue(face_image: FaceImage) -> None:
    from apps.gallery.tasks import enroll_face_image

    face_image_id = face_image.pk
    transaction.on_commit(lambda: enroll_face_image.delay(face_image_id))


def _reject(face_image: FaceImage, reason: str, detail: str) -> FaceImage:
    face_image.status = FaceImage.Status.REJECTED
    face_image.reason = reason
    face_image.detail = detail
    face_image.processed_at = timezone.now()
    face_image.save(update_fields=["status", "reason", "detail", "processed_at"])
    return face_image


def face_image_enroll(*, face_image_id: int) -> FaceImage:
    """Detect and embed the face of an enrollment photo with the organization's model.

    Re-running replaces the embedding of that model (a redelivered task, a re-embed).
    """
    face_image = FaceImage.objects.select_related("organization", "person").get(pk=face_image_id)
    organization = face_image.organization
    try:
        analyzer = analyzer_for(organization)
        with face_image.image.open("rb") as file:
            image = image_decode(file.read())
        faces = analyzer.detect(image)
    except ServiceError as error:
        return _reject(face_image, error.code, error.message)
    if not faces:
        return _reject(face_image, "no_face", "No face was found in the photo.")
    # The largest face is the subject; the quality issue adds an ambiguity check.
    face = max(faces, key=lambda f: f.box.w * f.box.h)
    vector = analyzer.embed(image, [face])[0]
    with transaction.atomic():
        FaceEmbedding.objects.update_or_create(
            face_image=face_image,
            model_name=analyzer.model_name,
            defaults={
                "organization": organization,
                "person_id": face_image.person_id,
                "dimensions": len(vector),
                "detector": analyzer.detector_name,
                "embedding": vector,
                "box_x": face.box.x,
                "box_y": face.box.y,
                "box_w": face.box.w,
                "box_h": face.box.h,
                "quality": face.confidence,
            },
        )
        face_image.status = FaceImage.Status.ENROLLED
        face_image.reason = ""
        face_image.detail = ""
        face_image.processed_at = timezone.now()
        face_image.save(update_fields=["status", "reason", "detail", "processed_at"])
    return face_image
