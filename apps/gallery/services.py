import logging
import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import audit
from apps.core.errors import ServiceError
from apps.gallery import selectors
from apps.gallery.models import FaceEmbedding, FaceImage, GalleryImport, GalleryReembed, Person
from apps.gallery.signals import gallery_changed
from apps.gallery.tasks import (
    face_image_enroll_task,
    gallery_import_run_task,
    gallery_old_embeddings_remove_task,
    gallery_reembed_run_task,
)
from apps.organizations.models import Organization
from apps.recognition.analyzers import (
    analyzer_by_name,
    analyzer_for,
    ensure_model_ready,
    ensure_ready,
    image_decode,
    quality_policy,
)
from apps.recognition.pipeline import catalog, quality

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
    ensure_ready(person.organization)
    image_decode(data)
    face_image = FaceImage(organization_id=person.organization_id, person=person)
    face_image.image.save(f"{uuid.uuid4().hex}.img", ContentFile(data), save=False)
    face_image.save()
    face_image_enqueue(face_image)
    return face_image


def face_image_enqueue(face_image: FaceImage) -> None:
    face_image_id, organization_id = face_image.pk, face_image.organization_id
    transaction.on_commit(lambda: face_image_enroll_task.delay(face_image_id, organization_id=organization_id))


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


def face_image_enroll(*, face_image_id: int) -> FaceImage:
    """Detect, check and embed the face of an enrollment photo with the organization's model.

    Rejects a photo with no face, two faces of similar size, or a face that is too
    small, too blurry or turned too far. Re-running replaces the embedding of that
    model (a redelivered task, a re-embed).
    """
    face_image = FaceImage.objects.select_related("organization", "person").get(pk=face_image_id)
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
            _reembed_photo(face_image, analyzer_by_name(model_name, organization.detector), image=image)
        except ServiceError as error:  # the change's own run reports it
            logger.warning("photo %s not embedded with %s: %s", face_image.pk, model_name, error)
    gallery_changed.send(sender=Person, organization_id=organization.pk)
    return face_image


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


# --- Changing the organization's model -------------------------------------------------

# Frames that read the organization just before a switch still match against the old
# model's embeddings: they are deleted this long after the switch.
OLD_EMBEDDINGS_GRACE_SECONDS = 60


def gallery_reembed_start(*, organization: Organization, model_name: str, user=None) -> GalleryReembed | None:
    """Embed every enrolled photo again with `model_name`, in the background; matching
    switches to it when all are done. None when it is the model in use already (a
    change under way to another model is cancelled)."""
    catalog.model_spec(model_name)  # ValueError for an unknown name
    ensure_model_ready(model_name=model_name, detector=organization.detector)

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
                problem = _reembed_photo(face_image, analyzer)
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


def _reembed_photo(face_image: FaceImage, analyzer, image=None) -> str:
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


# --- Bulk import ---------------------------------------------------------------------

IMPORTABLE = (".jpg", ".jpeg", ".png", ".webp")


def gallery_import_start(*, organization, archive: bytes, user=None) -> GalleryImport:
    """Store a zip (one folder per person) and import it in the background."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            names = _importable(zipped)
    except zipfile.BadZipFile:
        raise ServiceError("The file is not a zip archive.", code="archive_invalid", field="archive") from None
    if not names:
        raise ServiceError(
            "No photos found: the zip must hold one folder per person with JPEG, PNG or WebP photos.",
            code="archive_empty",
            field="archive",
        )
    job = GalleryImport(organization=organization, total=len(names), created_by=user)
    job.archive.save(f"{uuid.uuid4().hex}.zip", ContentFile(archive), save=False)
    job.save()
    job_id, organization_id = job.pk, organization.pk
    transaction.on_commit(lambda: gallery_import_run_task.delay(job_id, organization_id=organization_id))
    return job


def _importable(zipped) -> list[str]:
    names = []
    for info in zipped.infolist():
        parts = info.filename.strip("/").split("/")
        if info.is_dir() or len(parts) < 2 or parts[-1].startswith(".") or "__MACOSX" in parts:
            continue
        if parts[-1].lower().endswith(IMPORTABLE):
            names.append(info.filename)
    return sorted(names)


def gallery_import_run(*, job_id: int) -> GalleryImport:
    """Each folder becomes a person (or adds to the person of that name); each photo is
    checked and queued for enrollment like any other. Progress is saved as it goes."""
    import zipfile

    job = GalleryImport.objects.select_related("organization").get(pk=job_id)
    GalleryImport.objects.filter(pk=job.pk).update(status=GalleryImport.Status.RUNNING)
    problems, people_created, photos_added = [], 0, 0
    try:
        with job.archive.open("rb") as file, zipfile.ZipFile(file) as zipped:
            for done, name in enumerate(_importable(zipped), start=1):
                person_name = name.strip("/").split("/")[-2][:200]
                person = Person.objects.filter(organization=job.organization, name=person_name).first()
                if person is None:
                    person = person_create(organization=job.organization, name=person_name)
                    people_created += 1
                try:
                    if zipped.getinfo(name).file_size > settings.API_MAX_IMAGE_BYTES:
                        raise ServiceError("Over the image byte limit.", code="image_too_large")
                    face_image_add(person=person, data=zipped.read(name))
                    photos_added += 1
                except ServiceError as error:
                    problems.append({"file": name, "error": error.code, "message": error.message})
                GalleryImport.objects.filter(pk=job.pk).update(
                    processed=done, people_created=people_created, photos_added=photos_added, problems=problems
                )
    except (zipfile.BadZipFile, OSError) as error:
        GalleryImport.objects.filter(pk=job.pk).update(
            status=GalleryImport.Status.FAILED,
            finished_at=timezone.now(),
            problems=[*problems, {"file": "", "error": "archive_invalid", "message": str(error)}],
        )
        return GalleryImport.objects.get(pk=job.pk)
    GalleryImport.objects.filter(pk=job.pk).update(status=GalleryImport.Status.DONE, finished_at=timezone.now())
    return GalleryImport.objects.get(pk=job.pk)
