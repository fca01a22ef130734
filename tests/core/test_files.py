"""Stored files and their rows: a file whose row never came to be is swept."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core.files import orphaned_files_sweep
from apps.core.tenancy import tenant_context
from apps.frames.services import frame_create
from apps.gallery.models import Person
from apps.gallery.services import face_image_add
from tests.faces import photo_bytes
from tests.factories import SightingFactory


class Killed(Exception):
    """Stands for the process dying after the file is written, before its row commits."""


def stored_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@pytest.mark.django_db
def test_files_no_row_names_are_swept_once_old_and_the_others_kept(make_org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # a media folder of this test's own: it sweeps all of it
    organization, _, _ = make_org("orphans")
    frame = frame_create(organization=organization, data=photo_bytes("img1.jpg"))
    photo = face_image_add(
        person=Person.objects.create(organization=organization, name="Ada"), data=photo_bytes("img2.jpg")
    )
    sighting = SightingFactory(organization=organization, frame=frame)
    sighting.crop.save("face.jpg", ContentFile(photo_bytes("img3.jpg")))
    kept = {frame.image.name, photo.image.name, sighting.crop.name}
    with pytest.raises(Killed), transaction.atomic():
        frame_create(organization=organization, data=photo_bytes("img4.jpg"))
        raise Killed
    (tmp_path / "README.txt").write_text("not the service's: outside every organization's folder")
    orphan = stored_files(tmp_path) - kept - {"README.txt"}
    assert len(orphan) == 1 and orphan.pop().startswith(f"org_{organization.pk}/frames/")

    assert orphaned_files_sweep() == 0  # young: its row's transaction could still be open
    assert orphaned_files_sweep(now=timezone.now() + timedelta(hours=2)) == 1
    assert stored_files(tmp_path) == kept | {"README.txt"}


@pytest.mark.django_db
def test_the_sweep_refuses_to_run_for_one_organization(make_org):
    """Row-level security would hide the other organizations' rows: their files would
    all look orphaned."""
    organization, _, _ = make_org("orphans-context")
    with tenant_context(organization.pk), pytest.raises(RuntimeError, match="outside any organization"):
        orphaned_files_sweep()
