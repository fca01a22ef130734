"""What the service knows about each model and detector: sizes, weight files,
alignment and the default decision threshold."""

from dataclasses import dataclass
from pathlib import Path

from apps.recognition.pipeline.calibration import ScoreReference


@dataclass(frozen=True)
class ModelSpec:
    name: str  # DeepFace's model name
    dimensions: int
    weight_file: str  # file name under $DEEPFACE_HOME/.deepface/weights
    # Cosine distance above which a face is nobody in the gallery.
    default_threshold: float
    # "dlib_chip": dlib's own 5-point face chip, which dlib's network was trained on.
    # "deepface": DeepFace's eye-line rotation and crop, resized to the model input.
    alignment: str
    normalization: str = "base"
    # Distances measured on lfw-dev: the impostor tail that calibrates the threshold for
    # a gallery (calibration.py). None: the default threshold is used as it is.
    reference: ScoreReference | None = None


ALIGNMENTS = ("dlib_chip", "deepface")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # Measured on ../shared/datasets/faces/pairs.csv with this pipeline (README).
        ModelSpec("Dlib", 128, "dlib_face_recognition_resnet_model_v1.dat", 0.07, "dlib_chip"),
        # Facenet weights cannot be fetched on the machines we measure on; DeepFace's
        # published cosine threshold for Facenet stands until it is calibrated.
        ModelSpec("Facenet", 128, "facenet_weights.onnx", 0.40, "deepface"),
    )
}

# Detectors whose weights are available offline: DeepFace's dlib detector needs the
# 5-point landmark model (face-recognition-models ships it); OpenCV's Haar cascades
# ship inside opencv 4.x wheels.
DETECTORS: dict[str, tuple[str, ...]] = {
    "dlib": ("shape_predictor_5_face_landmarks.dat",),
    "opencv": (),
}

# Every face gets dlib's 5 landmarks, whatever the detector: the dlib_chip alignment
# and the pose estimate use them. face-recognition-models ships the file.
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def weights_dir(deepface_home: str | Path) -> Path:
    return Path(deepface_home) / ".deepface" / "weights"


def required_files(model_name: str, detector: str) -> list[str]:
    spec = model_spec(model_name)
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector {detector!r}; known detectors: {', '.join(DETECTORS)}")
    return sorted({spec.weight_file, LANDMARKS_FILE, *DETECTORS[detector]})


def missing_files(model_name: str, detector: str, deepface_home: str | Path) -> list[str]:
    folder = weights_dir(deepface_home)
    return [name for name in required_files(model_name, detector) if not (folder / name).is_file()]


def model_ready(model_name: str, deepface_home: str | Path) -> bool:
    return (weights_dir(deepface_home) / model_spec(model_name).weight_file).is_file()
