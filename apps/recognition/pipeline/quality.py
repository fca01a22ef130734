"""How usable a detected face is: size, sharpness, detector confidence and pose, each a
number, and the machine-readable reasons a face fails a policy."""

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from apps.recognition.pipeline.faces import DetectedFace

# Sharpness is measured on the face resized to this many pixels, so that it does not
# depend on how large the face is in the frame.
SHARPNESS_SIDE = 128


@dataclass(frozen=True)
class Quality:
    size: int  # shorter side of the face box, original pixels
    sharpness: float  # variance of the Laplacian of the face at 128 px; sharp faces score hundreds
    confidence: float  # the detector's score
    yaw: float | None  # nose offset from the eyes' midpoint / eye distance: 0 frontal, ~0.5 profile
    roll: float | None  # eye line angle, degrees

    def as_dict(self) -> dict:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class QualityPolicy:
    min_face_px: int = 48
    min_sharpness: float = 40.0
    max_yaw: float = 0.45
    min_confidence: float = 0.0


def measure(image: np.ndarray, face: DetectedFace) -> Quality:
    box = face.box
    crop = image[box.y : box.y + box.h, box.x : box.x + box.w]
    gray = cv2.cvtColor(
        cv2.resize(crop, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
    )
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    yaw = roll = None
    if len(face.landmarks) == 5:
        points = np.asarray(face.landmarks, dtype=np.float64)
        eye_a, eye_b, nose = points[0:2].mean(axis=0), points[2:4].mean(axis=0), points[4]
        eye_distance = float(np.linalg.norm(eye_a - eye_b))
        if eye_distance > 0:
            left, right = sorted((eye_a, eye_b), key=lambda p: p[0])
            axis = (right - left) / eye_distance
            # Signed offset of the nose along the eye line: turning the head moves it sideways.
            yaw = float(np.dot(nose - (left + right) / 2, axis) / eye_distance)
            roll = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    return Quality(size=min(box.w, box.h), sharpness=sharpness, confidence=face.confidence, yaw=yaw, roll=roll)


def score(quality: Quality) -> float:
    """One number in [0, 1] to pick the best-looking face among several of the same
    person: large, sharp and frontal faces score high. Only for ranking."""
    size = min(quality.size / 160.0, 1.0)
    sharpness = min(quality.sharpness / 300.0, 1.0)
    frontal = 1.0 - min(abs(quality.yaw) / 0.5, 1.0) if quality.yaw is not None else 0.5
    return round(size * (0.5 + 0.5 * sharpness) * (0.5 + 0.5 * frontal), 4)


def reasons(quality: Quality, policy: QualityPolicy) -> list[str]:
    found = []
    if quality.size < policy.min_face_px:
        found.append("too_small")
    if quality.sharpness < policy.min_sharpness:
        found.append("blurry")
    if quality.yaw is not None and abs(quality.yaw) > policy.max_yaw:
        found.append("extreme_pose")
    if quality.confidence < policy.min_confidence:
        found.append("low_confidence")
    return found


def ambiguous(faces: list[DetectedFace], ratio: float = 0.5) -> bool:
    """Two or more faces of similar size: no way to tell whose photo it is."""
    if len(faces) < 2:
        return False
    areas = sorted((f.box.w * f.box.h for f in faces), reverse=True)
    return areas[1] >= ratio * areas[0]
