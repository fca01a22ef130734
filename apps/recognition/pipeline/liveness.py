"""Passive liveness: is the face in front of the camera a live one, or a photo or a
screen held up to it? faceplugin's fr_liveness (catalog.LIVENESS_WEIGHTS), fed as its
own JavaScript feeds it, except for the channel order: BGR, which issue 32 measured
to call far fewer real faces spoofs (7 % of 500 LFW faces, against 35 % in RGB).

The window: the face's box squared and scaled 2.7 times around its centre, shifted to
stay inside the photo (and smaller where the photo is), resized to 128 x 128; raw 0-255
values, NCHW; the softmax of its 3 outputs, of which the first is "live"."""

from pathlib import Path

import cv2
import numpy as np

WINDOW_SCALE = 2.7
INPUT_SIDE = 128


def window(image: np.ndarray, box) -> np.ndarray:
    """The face and its surroundings as the model reads them (fr_liveness.js's
    alignLivenessImage, on a squared box)."""
    height, width = image.shape[:2]
    side = max(box.w, box.h)
    scale = min((height - 1) / side, (width - 1) / side, WINDOW_SCALE)
    size = side * scale
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    left, top = cx - size / 2, cy - size / 2
    left = min(max(0.0, left), width - 1 - size)
    top = min(max(0.0, top), height - 1 - size)
    x0, y0 = max(0, int(left)), max(0, int(top))
    x1, y1 = min(width - 1, int(left + size)), min(height - 1, int(top + size))
    return cv2.resize(image[y0:y1, x0:x1], (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_LINEAR)


class LivenessModel:
    """fr_liveness on one thread (the worker runs one model thread per process)."""

    def __init__(self, path: str | Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def scores(self, image: np.ndarray, boxes) -> list[float]:
        """The probability that each face is live, in [0, 1]; `image` is BGR, as decoded."""
        if not boxes:
            return []
        batch = np.stack([window(image, box).transpose(2, 0, 1) for box in boxes]).astype(np.float32)
        # The model's batch is fixed at 1.
        logits = np.concatenate([self.session.run(None, {self.input_name: item[None]})[0] for item in batch])
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return [float(p) for p in (exp / exp.sum(axis=1, keepdims=True))[:, 0]]


# --- Measuring it (ISO/IEC 30107-3) ------------------------------------------------------


def wilson_interval(errors: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % confidence interval of an error rate measured as errors / total (Wilson's
    score interval: sound at 0 errors and at small counts, where the normal one is not)."""
    if total == 0:
        return (0.0, 1.0)
    rate = errors / total
    centre = (rate + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, float(centre - half)), min(1.0, float(centre + half)))


def error_rate(scores: list[float], threshold: float, *, bona_fide: bool) -> tuple[int, int]:
    """(errors, presentations) at a threshold on the live score: for bona fide
    presentations (BPCER) those called attacks, for attacks (APCER) those called live."""
    if bona_fide:
        return sum(score < threshold for score in scores), len(scores)
    return sum(score >= threshold for score in scores), len(scores)
