"""Files go with their rows: deleting a row (directly or by cascade, a person's
erasure or an organization's deletion) deletes its stored files once the
transaction commits. Files whose row never came to be, or whose deletion was cut
short, are swept (orphaned_files_sweep)."""

import logging
import posixpath
import re
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice

from django.apps import apps
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.core.tenancy import current_organization_id

logger = logging.getLogger(__name__)

# A file younger than this may belong to a row whose transaction is still open (a frame
# being stored, a gallery import half-way): it is left for the next sweep.
ORPHAN_MIN_AGE = timedelta(hours=1)
# Every upload_to puts an organization's files under org_<id>/; nothing else is swept.
ORGANIZATION_FOLDER = re.compile(r"org_\d+")
NAMES_PER_QUERY = 1000


def _delete_files(sender, instance, **kwargs) -> None:
    files = [
        getattr(instance, field.name)
        for field in sender._meta.fields
        if isinstance(field, models.FileField) and getattr(instance, field.name)
    ]
    for file in files:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))


def zip_response(archive, name: str) -> StreamingHttpResponse:
    """A zip streamed to the client as it is written (an iterable of bytes), as a download."""
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return response


def files_clear(instance: models.Model, *names: str) -> None:
    """Empty the row's file fields and delete their stored files once the transaction
    commits (the row stays: an erasure of what the files held, not of the record)."""
    for name in names:
        file = getattr(instance, name)
        if file:
            storage, stored = file.storage, file.name
            transaction.on_commit(lambda storage=storage, stored=stored: storage.delete(stored))
            setattr(instance, name, "")
    instance.save(update_fields=list(names))


def _file_fields() -> list[tuple[type[models.Model], models.FileField]]:
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.fields
        if isinstance(field, models.FileField)
    ]


def _connect() -> None:
    for model in {model for model, _ in _file_fields()}:
        post_delete.connect(_delete_files, sender=model, dispatch_uid=f"delete-files-{model._meta.label}")


_connect()


def _stored_names(storage, folder: str) -> Iterator[str]:
    folders, files = storage.listdir(folder)
    for name in sorted(files):
        yield posixpath.join(folder, name)
    for name in sorted(folders):
        yield from _stored_names(storage, posixpath.join(folder, name))


def _named_by_a_row(fields: list[tuple[type[models.Model], models.FileField]], names: list[str]) -> set[str]:
    named = set()
    for model, field in fields:
        # The file columns that grow with use (frames, crops, enrollment photos) are indexed.
        named.update(model._base_manager.filter(**{f"{field.name}__in": names}).values_list(field.name, flat=True))
    return named


def orphaned_files_sweep(*, now=None) -> int:
    """Delete the stored files that no row names and that are older than ORPHAN_MIN_AGE:
    left by a process killed between writing a file and committing its row, or between
    deleting a row and its file. Returns how many were deleted. Daily (beat)."""
    # Inside an organization's context row-level security would hide the other
    # organizations' rows, and their files would look orphaned.
    if current_organization_id() is not None:
        raise RuntimeError("orphaned_files_sweep must run outside any organization's context")
    cutoff = (now or timezone.now()) - ORPHAN_MIN_AGE
    by_storage: dict[int, tuple[object, list]] = {}
    for model, field in _file_fields():
        by_storage.setdefault(id(field.storage), (field.storage, []))[1].append((model, field))
    deleted = 0
    for storage, fields in by_storage.values():
        if not storage.exists(""):
            continue
        folders, _ = storage.listdir("")
        for folder in filter(ORGANIZATION_FOLDER.fullmatch, sorted(folders)):
            names = _stored_names(storage, folder)
            while batch := list(islice(names, NAMES_PER_QUERY)):
                for name in set(batch) - _named_by_a_row(fields, batch):
                    if storage.get_modified_time(name) < cutoff:
                        storage.delete(name)
                        deleted += 1
    if deleted:
        logger.info("deleted %d stored files that no row named", deleted)
    return deleted
