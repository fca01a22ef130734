"""People and their photos: added, checked, embedded and enrolled, or rejected with a reason; erased."""

import logging
import uuid
from datetime import timedelta

import kombu.exceptions
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import audit
from apps.core.errors import ServiceError
from apps.gallery import selectors
from apps.gallery.models import FaceEmbedding, FaceImage, GalleryReembed, Person
from apps.gallery.services.consent import consent_require
from apps.gallery.signals import gallery_changed
from apps.gallery.tasks import (
    face_image_enroll_task,
)
from apps.organizations.models import Organization
from apps.recognition.analyzers import (
    analyzer_by_name,
    analyzer_for,
    image_decode,
    quality_policy,
    require_organization_model,
)
from apps.recognition.pipeline import images, quality

logger = logging.getLogger(__name__)

# A photo this close to one already enrolled (as a fraction of the threshold) adds
# nothing: a re-encoded or resized copy of the same picture.
NEAR_DUPLICATE_FRACTION = 0.15


def person_create(*, organization, name: str, external_id: str = "") -> Person:
    return Person.objects.create(organization=organization, name=name, external_id=external_id)


def person_update(*, person: Person, **fields) -> Person:
    for field, value in fields.items():
        setattr(person, field, value)
    # Only what changed: a concurrent update of another field is not overwritten.
    person.save(update_fields=list(fields))
    return person


def person_delete(*, person: Person, user=None, api_key=None) -> None:
    """Erase a person: photos, embeddings and sightings, their files included
    (apps.core.files removes the files of every deleted row), and say so in the audit log."""
    audit.record(
        organization_id=person.organization_id,
        action=audit.Action.ERASED,
        user=user,
        api_key=api_key,
        target=person,
        detail={"photos": person.face_images.count(), "sightings": person.sighting_set.count()},
    )
    person.delete()
    gallery_changed.send(sender=Person, organization_id=person.organization_id)


def face_image_delete(*, face_image: FaceImage) -> None:
    face_image.delete()  # its embeddings go with it, and its file after the commit
    gallery_changed.send(sender=Person, organization_id=face_image.organization_id)


def face_image_add(*, person: Person, data: bytes) -> FaceImage:
    """Store a valid enrollment photo and queue its embedding; bad input raises
    before anything is stored."""
    consent_require(person)
    require_organization_model(person.organization)
    image_decode(data)
    face_image = FaceImage(organization_id=person.organization_id, person=person, queued_at=timezone.now())
    face_image.image.save(f"{uuid.uuid4().hex}.img", ContentFile(data), save=False)
    face_image.save()
    face_image_enqueue(face_image)
    return face_image


def face_image_enqueue(face_image: FaceImage, *, again: bool = False) -> None:
    """Queue the photo's enrollment once the transaction commits; `again` embeds a
    photo already enrolled (or rejected) once more, as the admin's re-embed action asks.
    A pending photo's `queued_at` is set by whoever queues it (face_image_add, the sweep)."""
    face_image_id, organization_id = face_image.pk, face_image.organization_id

    def publish() -> None:
        try:
            face_image_enroll_task.delay(face_image_id, organization_id=organization_id, again=again)
        except kombu.exceptions.OperationalError as error:
            # The photo is stored and pending: face_images_requeue_stale queues it again
            # once the broker is back. Failing the request would make the client upload
            # it twice.
            logger.warning("photo %s stored but not queued (the broker is not answering): %s", face_image_id, error)

    transaction.on_commit(publish)


def face_images_requeue_stale() -> int:
    """Queue again the photos still pending long after they were queued: their message
    was lost with the broker, or their worker died or failed on them. A photo that
    workers already began RECOGNITION_MAX_ATTEMPTS times is rejected instead, as
    processing_failed. Returns how many were queued."""
    cutoff = timezone.now() - timedelta(seconds=settings.RECOGNITION_STALE_FRAME_SECONDS)
    count = 0
    for face_image in FaceImage.objects.filter(status=FaceImage.Status.PENDING, queued_at__lt=cutoff):
        # Claimed by the time it was queued: a photo that two sweeps find is handled once.
        mine = FaceImage.objects.filter(pk=face_image.pk, status=face_image.status, queued_at=face_image.queued_at)
        if face_image.attempts >= settings.RECOGNITION_MAX_ATTEMPTS:
            last = face_image.detail or "The worker stopped each time (its log says why)."
            detail = f"Given up after {face_image.attempts} attempts. {last} Upload the photo again."
            rejected = mine.update(
                status=FaceImage.Status.REJECTED, reason="processing_failed", detail=detail, processed_at=timezone.now()
            )
            if rejected:
                logger.error("photo %s: %s", face_image.pk, detail)
        elif mine.update(queued_at=timezone.now()):
            face_image_enqueue(face_image)
            count += 1
    return count


def _reject(face_image: FaceImage, reason: str, detail: str, quality: dict | None = None) -> FaceImage:
    FaceEmbedding.objects.filter(face_image=face_image).delete()
    face_image.status = FaceImage.Status.REJECTED
    face_image.reason = reason
    face_image.detail = detail
    face_image.warnings = []
    face_image.quality = quality or {}
    face_image.processed_at = timezone.now()
    face_image.save(update_fields=["status", "reason", "detail", "warnings", "quality", "processed_at"])
    return face_image


REJECTION_MESSAGES = {
    "too_small": "The face is too small ({size} px; at least {min_face_px} px are needed).",
    "blurry": "The face is too blurry (sharpness {sharpness:.0f}; at least {min_sharpness:.0f} is needed).",
    "extreme_pose": "The face is turned too far from the camera (yaw {yaw:.2f}; at most {max_yaw:.2f}).",
    "low_confidence": "The detector is not confident this is a face.",
}


def enrollment_warnings(*, face_image: FaceImage, embedding, threshold: float) -> list[dict]:
    """Recorded, not blocking: a near-copy of a photo already enrolled, and a photo that
    looks more like someone else than like the person's own photos."""
    own, other = selectors.nearest_own_and_other(
        organization_id=face_image.organization_id,
        model_name=face_image.organization.recognition_model,
        person_id=face_image.person_id,
        exclude_face_image_id=face_image.pk,
        embedding=embedding,
    )
    warnings = []
    if own is not None and own.distance <= NEAR_DUPLICATE_FRACTION * threshold:
        warnings.append(
            {
                "code": "near_duplicate",
                "message": f"Nearly identical to enrolled photo #{own.face_image_id} (distance {own.distance:.4f}).",
                "face_image": own.face_image_id,
            }
        )
    if other is not None and (own is None or other.distance < own.distance) and other.distance <= threshold:
        warnings.append(
            {
                "code": "closer_to_other_person",
                "message": f"Closer to {other.person_name} (distance {other.distance:.4f}) than to this person's "
                + (f"own photos ({own.distance:.4f})." if own else "other photos (none yet)."),
                "person": other.person_id,
            }
        )
    return warnings


def face_image_enroll(*, face_image_id: int, again: bool = False) -> FaceImage | None:
    """Detect, check and embed the face of a pending enrollment photo with the
    organization's model.

    Rejects a photo with no face, two faces of similar size, or a face that is too
    small, too blurry or turned too far. A photo no longer pending is left alone (the
    stale-photo sweep may have queued it twice) unless `again` is set: then its
    embedding of that model is replaced (a re-embed).
    """
    face_image = FaceImage.objects.select_related("organization", "person").filter(pk=face_image_id).first()
    if face_image is None:
        logger.info("photo %s was deleted before it was enrolled", face_image_id)
        return None
    if face_image.status != FaceImage.Status.PENDING:
        return _enroll(face_image) if again else face_image
    # Counted before the models run, so that a photo that kills its worker is given up on.
    FaceImage.objects.filter(pk=face_image_id).update(attempts=F("attempts") + 1)
    try:
        return _enroll(face_image)
    except Exception as error:
        # Left pending for face_images_requeue_stale to try again (a storage or database
        # outage passes); meanwhile the admin and the API say what went wrong.
        FaceImage.objects.filter(pk=face_image_id, status=FaceImage.Status.PENDING).update(
            detail=f"Attempt {face_image.attempts + 1} failed: {type(error).__name__}: {error}"[:2000]
        )
        raise


def _enroll(face_image: FaceImage) -> FaceImage:
    organization = face_image.organization
    try:
        analyzer = analyzer_for(organization)
        with face_image.image.open("rb") as file:
            image = image_decode(file.read())
    except ServiceError as error:
        return _reject(face_image, error.code, error.message)
    analyzed = analyzer.analyze(image)
    if not analyzed:
        return _reject(face_image, "no_face", "No face was found in the photo.")
    if quality.ambiguous([a.face for a in analyzed]):
        return _reject(
            face_image, "ambiguous", f"{len(analyzed)} faces of similar size: use a photo of this person alone."
        )
    chosen = max(analyzed, key=lambda a: a.face.box.w * a.face.box.h)
    face, measured, vector = chosen.face, chosen.quality, chosen.embedding
    policy = quality_policy()
    reasons = quality.reasons(measured, policy)
    if reasons:
        values = {**vars(policy), **measured.as_dict()}
        return _reject(
            face_image,
            reasons[0],
            " ".join(REJECTION_MESSAGES[r].format(**values) for r in reasons),
            measured.as_dict(),
        )
    warnings = enrollment_warnings(face_image=face_image, embedding=vector, threshold=organization.threshold)
    with transaction.atomic():
        _embedding_store(face_image, analyzer, face, vector, measured.as_dict())
        face_image.status = FaceImage.Status.ENROLLED
        face_image.reason = ""
        face_image.detail = ""
        face_image.warnings = warnings
        face_image.quality = measured.as_dict()
        face_image.processed_at = timezone.now()
        face_image.save(update_fields=["status", "reason", "detail", "warnings", "quality", "processed_at"])
    if organization.enrollment_photos == Organization.EnrollmentPhotos.FACE_ONLY and not face_image.face_only:
        image = _keep_face_only(face_image, image, face.box)
    # A model change under way needs this photo too, and so does a model switched to
    # while it was being enrolled.
    wanted = set(
        GalleryReembed.objects.filter(organization=organization, status__in=GalleryReembed.ACTIVE).values_list(
            "model_name", flat=True
        )
    )
    wanted.add(Organization.objects.values_list("recognition_model", flat=True).get(pk=organization.pk))
    for model_name in sorted(wanted - {analyzer.model_name}):
        try:
            face_image_embed(face_image, analyzer_by_name(model_name, organization.detector), image=image)
        except ServiceError as error:  # the change's own run reports it
            logger.warning("photo %s not embedded with %s: %s", face_image.pk, model_name, error)
    gallery_changed.send(sender=Person, organization_id=organization.pk)
    return face_image


def _keep_face_only(face_image: FaceImage, image, box):
    """Replaces the enrolled photo by its face with room around it (the rest of the picture
    is deleted once this commits); the stored boxes move to the new picture's pixels, so
    that another model's embedding finds the same face. Returns the new picture."""
    crop, (x0, y0, scale) = images.face_only(image, box)
    original = face_image.image
    storage, old_name = original.storage, original.name
    with transaction.atomic():
        face_image.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(images.encode_jpeg(crop, quality=95)), save=False)
        face_image.face_only = True
        face_image.save(update_fields=["image", "face_only"])
        for embedding in face_image.embeddings.all():
            embedding.box_x, embedding.box_y = (
                round((embedding.box_x - x0) * scale),
                round((embedding.box_y - y0) * scale),
            )
            embedding.box_w, embedding.box_h = round(embedding.box_w * scale), round(embedding.box_h * scale)
            embedding.save(update_fields=["box_x", "box_y", "box_w", "box_h"])
        transaction.on_commit(lambda: storage.delete(old_name))
    return crop


def _embedding_store(face_image: FaceImage, analyzer, face, vector, quality_measured: dict) -> None:
    FaceEmbedding.objects.update_or_create(
        face_image=face_image,
        model_name=analyzer.model_name,
        defaults={
            "organization_id": face_image.organization_id,
            "person_id": face_image.person_id,
            "dimensions": len(vector),
            "detector": analyzer.detector_name,
            "embedding": vector,
            "box_x": face.box.x,
            "box_y": face.box.y,
            "box_w": face.box.w,
            "box_h": face.box.h,
            "quality": quality_measured,
        },
    )


def face_image_embed(face_image: FaceImage, analyzer, image=None) -> str:
    """The enrolled face of a photo, embedded by another model; '' or what went wrong.
    The face is the one enrolled (the detection nearest its box), not re-chosen."""
    if image is None:
        with face_image.image.open("rb") as file:
            image = image_decode(file.read())
    analyzed = analyzer.analyze(image)
    if not analyzed:
        return "no face found"
    enrolled = face_image.embeddings.order_by("created_at").first()
    if enrolled is None:
        chosen = max(analyzed, key=lambda a: a.face.box.w * a.face.box.h)
    else:
        cx, cy = enrolled.box_x + enrolled.box_w / 2, enrolled.box_y + enrolled.box_h / 2

        def off_centre(a) -> float:
            box = a.face.box
            return (box.x + box.w / 2 - cx) ** 2 + (box.y + box.h / 2 - cy) ** 2

        chosen = min(analyzed, key=off_centre)
    _embedding_store(face_image, analyzer, chosen.face, chosen.embedding, chosen.quality.as_dict())
    return ""
