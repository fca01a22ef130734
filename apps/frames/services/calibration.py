"""The organization's threshold for its target FPIR, derived from its gallery and the
corrections of its sightings, and recomputed in the background when the gallery changes."""

import logging
import uuid

import numpy as np
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction

from apps.core.errors import ServiceError
from apps.frames.tasks import calibration_scheduled_run_task
from apps.gallery.models import FaceEmbedding
from apps.organizations.models import Organization
from apps.recognition.models import Calibration
from apps.recognition.pipeline import calibration, catalog
from apps.sightings.models import Correction

logger = logging.getLogger(__name__)


def calibration_run(*, organization, target_fpir: float | None = None) -> Calibration:
    """Derive the threshold for the organization's target FPIR from its gallery (and
    the model's reference distances), store it with the rates to expect and a plot,
    and use it from now on (unless an explicit threshold overrides it)."""
    target_fpir = organization.fpir_target if target_fpir is None else target_fpir
    if not 0 < target_fpir < 0.5:
        raise ServiceError("The target FPIR must be between 0 and 0.5.", field="target_fpir")
    model_name = organization.recognition_model
    reference = catalog.model_spec(model_name).reference
    if reference is None:
        raise ServiceError(
            f"Model {model_name} has no reference distances yet; its default threshold stays in use.",
            code="not_enough_data",
        )
    rows = list(
        FaceEmbedding.objects.filter(organization=organization, model_name=model_name).values_list(
            "person_id", "embedding"
        )
    )
    owners = np.array([person for person, _ in rows], dtype=np.int64)
    vectors = np.stack([np.asarray(v, dtype=np.float32) for _, v in rows]) if rows else np.zeros((0, 1), np.float32)
    corrections = list(
        Correction.objects.filter(
            organization=organization, from_person__isnull=False, sighting__model_name=model_name
        ).values_list("from_person_id", "sighting__embedding")
    )
    corrected = calibration.correction_distances(
        vectors, owners, [np.asarray(v, dtype=np.float32) for _, v in corrections], [p for p, _ in corrections]
    )
    result = calibration.calibrate_gallery(
        vectors, owners, target_fpir=target_fpir, reference=reference, margin=organization.margin, corrected=corrected
    )
    record = Calibration(
        organization=organization,
        model_name=model_name,
        target_fpir=target_fpir,
        threshold=result.threshold,
        people=result.people,
        photos=result.photos,
        impostor_pairs=result.impostor_pairs,
        source=result.source,
        expected_fpir=result.expected_fpir,
        expected_fnir=result.expected_fnir,
        summary={**result.summary(), "corrections": len(corrected)},
    )
    title = f"{organization.name}: {model_name}, target FPIR {target_fpir:g}"
    with transaction.atomic():
        record.plot.save(f"{uuid.uuid4().hex}.png", ContentFile(calibration.plot_png(result, title)), save=False)
        record.save()
        # Only this field is written: an admin saving the settings page meanwhile keeps theirs.
        organization.calibrated_thresholds = {
            **organization.calibrated_thresholds,
            model_name: round(result.threshold, 6),
        }
        type(organization).objects.filter(pk=organization.pk).update(
            calibrated_thresholds=organization.calibrated_thresholds
        )
    return record


# Enrollments and removals within this many seconds share one calibration.
CALIBRATION_DELAY_SECONDS = 5


def calibration_schedule(*, organization_id: int) -> None:
    """Calibrate again in the background after the gallery changed, once for a burst
    of changes (a bulk import enrolls hundreds of photos): a task is queued only when
    none is already waiting."""

    def queue():
        if cache.add(f"calibration-queued:{organization_id}", 1, timeout=CALIBRATION_DELAY_SECONDS + 60):
            calibration_scheduled_run_task.apply_async(
                kwargs={"organization_id": organization_id}, countdown=CALIBRATION_DELAY_SECONDS
            )

    transaction.on_commit(queue)


def calibration_scheduled_run(*, organization_id: int):
    """The background calibration: lets the next change queue another, then runs."""
    cache.delete(f"calibration-queued:{organization_id}")
    organization = Organization.objects.get(pk=organization_id)
    try:
        return calibration_run(organization=organization)
    except ServiceError as error:
        logger.info("calibration of organization %s skipped: %s", organization_id, error.message)
        return None
