"""Bulk import: a zip of people's photos, enrolled in the background with progress."""

import csv
import io
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.errors import ServiceError
from apps.gallery.models import GalleryImport, Person
from apps.gallery.services.consent import consent_record
from apps.gallery.services.enrollment import face_image_add, person_create
from apps.gallery.tasks import (
    gallery_import_run_task,
)

# --- Bulk import ---------------------------------------------------------------------

IMPORTABLE = (".jpg", ".jpeg", ".png", ".webp")
CONSENT_FILE = "consent.csv"


def gallery_import_start(*, organization, archive: bytes, user=None) -> GalleryImport:
    """Store a zip (one folder per person) and import it in the background."""
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


def _consents(zipped, problems: list) -> dict[str, dict]:
    """consent.csv at the archive's root, if any: person,method,purpose[,given_at] per row,
    the person named as their folder is. Recorded before that person's photos."""
    if CONSENT_FILE not in zipped.namelist():
        return {}
    try:
        rows = list(csv.DictReader(io.StringIO(zipped.read(CONSENT_FILE).decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as error:
        problems.append({"file": CONSENT_FILE, "error": "consent_invalid", "message": str(error)})
        return {}
    return {(row.get("person") or "").strip()[:200]: row for row in rows if (row.get("person") or "").strip()}


def _consent_record(person: Person, row: dict, job: GalleryImport, problems: list) -> None:
    try:
        given_at = parse_datetime((row.get("given_at") or "").strip()) if (row.get("given_at") or "").strip() else None
        consent_record(
            person=person,
            method=(row.get("method") or "").strip(),
            purpose=row.get("purpose") or "",
            given_at=given_at,
            user=job.created_by,
        )
    except (ServiceError, ValueError) as error:
        message = error.message if isinstance(error, ServiceError) else f"given_at: {error}"
        problems.append({"file": CONSENT_FILE, "error": "consent_invalid", "message": f"{person.name}: {message}"})


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
            consents = _consents(zipped, problems)
            for done, name in enumerate(_importable(zipped), start=1):
                person_name = name.strip("/").split("/")[-2][:200]
                person = Person.objects.filter(organization=job.organization, name=person_name).first()
                if person is None:
                    person = person_create(organization=job.organization, name=person_name)
                    people_created += 1
                if person_name in consents:
                    _consent_record(person, consents.pop(person_name), job, problems)
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
