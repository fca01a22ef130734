"""The FaceAnalyzers of this process: built once per (model, detector), kept for the
process's life. Only worker processes call this; web processes never load a model."""

from functools import cache

from django.conf import settings

from apps.core.errors import ModelUnavailable
from apps.recognition.pipeline import catalog
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady


@cache
def _build(model_name: str, detector: str) -> FaceAnalyzer:
    return FaceAnalyzer(
        model_name=model_name,
        detector=detector,
        deepface_home=settings.DEEPFACE_HOME,
        detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
        model_threads=settings.RECOGNITION_MODEL_THREADS,
    )


def analyzer_by_name(model_name: str, detector: str) -> FaceAnalyzer:
    try:
        return _build(model_name, detector)
    except ModelNotReady as error:
        raise ModelUnavailable(str(error)) from error


def analyzer_for(organization) -> FaceAnalyzer:
    return analyzer_by_name(organization.recognition_model, organization.detector)


def ensure_ready(organization) -> None:
    """Cheap check for web processes: the weight files exist (nothing is loaded)."""
    ensure_model_ready(model_name=organization.recognition_model, detector=organization.detector)


def ensure_model_ready(*, model_name: str, detector: str) -> None:
    missing = catalog.missing_files(model_name, detector, settings.DEEPFACE_HOME)
    if missing:
        raise ModelUnavailable(str(ModelNotReady(model_name, detector, missing)))


def preload() -> list[str]:
    """Load every ready model (or those in RECOGNITION_PRELOAD_MODELS) at worker start."""
    wanted = [name for name in settings.RECOGNITION_PRELOAD_MODELS.split(",") if name]
    names = wanted or [name for name in catalog.MODELS if catalog.model_ready(name, settings.DEEPFACE_HOME)]
    loaded = []
    for name in names:
        try:
            _build(name, settings.RECOGNITION_DEFAULT_DETECTOR)
            loaded.append(name)
        except ModelNotReady:
            continue
    return loaded
