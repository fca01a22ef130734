"""The model-facing layer: the FaceAnalyzers of this process (built once per (model,
detector), kept for the process's life; only worker processes build them, web
processes never load a model), image decoding within the upload limits, and the
quality policy. The pipeline below it takes no settings: this is where they are read."""

import logging
import threading
from functools import cache

import numpy as np
from django.conf import settings

from apps.core import metrics
from apps.core.errors import ImageTooLarge, InvalidImage, ModelUnavailable
from apps.recognition.pipeline import catalog, quality
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady
from apps.recognition.pipeline.images import ImageRejected, decode_image

logger = logging.getLogger(__name__)


@cache
def _build(model_name: str, detector: str) -> FaceAnalyzer:
    with metrics.model_loading(model=model_name, detector=detector):
        return FaceAnalyzer(
            model_name=model_name,
            detector=detector,
            deepface_home=settings.DEEPFACE_HOME,
            detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
            detect_tile_px=settings.RECOGNITION_DETECT_TILE_PX,
            model_threads=settings.RECOGNITION_MODEL_THREADS,
        )


def analyzer_by_name(model_name: str, detector: str) -> FaceAnalyzer:
    try:
        return _build(model_name, detector)
    except ModelNotReady as error:
        raise ModelUnavailable(str(error)) from error


def analyzer_for(organization) -> FaceAnalyzer:
    return analyzer_by_name(organization.recognition_model, organization.detector)


def require_organization_model(organization) -> None:
    """Cheap check for web processes: the weight files exist (nothing is loaded)."""
    require_model(model_name=organization.recognition_model, detector=organization.detector)


def require_model(*, model_name: str, detector: str) -> None:
    missing = catalog.missing_files(model_name, detector, settings.DEEPFACE_HOME)
    if missing:
        raise ModelUnavailable(str(ModelNotReady(model_name, detector, missing)))


def preload() -> list[str]:
    """Load at worker start the (model, detector) pairs of RECOGNITION_PRELOAD_MODELS,
    or by default those the organizations use and the new organizations' default: a
    model nobody uses would only lengthen the cold start (the 68-landmark model alone
    takes over a second). Another pair loads on its first frame."""
    wanted = [name for name in settings.RECOGNITION_PRELOAD_MODELS.split(",") if name]
    pairs = [(name, settings.RECOGNITION_DEFAULT_DETECTOR) for name in wanted] or [
        (settings.RECOGNITION_DEFAULT_MODEL, settings.RECOGNITION_DEFAULT_DETECTOR),
        *sorted(_pairs_in_use() - {(settings.RECOGNITION_DEFAULT_MODEL, settings.RECOGNITION_DEFAULT_DETECTOR)}),
    ]
    loaded = []
    for name, detector in pairs:
        try:
            _build(name, detector)
            loaded.append(f"{name}/{detector}")
        except (ModelNotReady, ValueError):
            continue
    return loaded


def _pairs_in_use() -> set[tuple[str, str]]:
    """The organizations' (model, detector) pairs, read on a thread of its own: a pool
    process starts with its parent's database connection, which it must not use (Celery's
    Django fixup drops it after the process's init handlers). None if the database does
    not answer: the default then loads alone."""
    from django.db import connection

    from apps.organizations.models import Organization

    found: set[tuple[str, str]] = set()

    def read() -> None:
        try:
            found.update(Organization.objects.values_list("recognition_model", "detector").distinct())
        except Exception as error:  # the worker starts all the same
            logger.warning("could not read the organizations' models to preload: %s", error)
        finally:
            connection.close()

    thread = threading.Thread(target=read, name="preload")
    thread.start()
    thread.join()
    return found


def image_decode(data: bytes) -> np.ndarray:
    """Decode an uploaded image within the configured limits, or raise a 4xx error."""
    try:
        return decode_image(data, max_bytes=settings.API_MAX_IMAGE_BYTES, max_pixels=settings.API_MAX_IMAGE_PIXELS)
    except ImageRejected as rejected:
        error = ImageTooLarge if rejected.code == "image_too_large" else InvalidImage
        raise error(rejected.message, field="image") from None


def quality_policy() -> quality.QualityPolicy:
    return quality.QualityPolicy(
        min_face_px=settings.RECOGNITION_MIN_FACE_PX,
        min_sharpness=settings.RECOGNITION_MIN_SHARPNESS,
        max_yaw=settings.RECOGNITION_MAX_YAW,
    )
