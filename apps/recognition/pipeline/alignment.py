"""How each model wants its face cut: the geometry between a detected face and the
model's input, one function per alignment. The catalog names each model's.

- "dlib_chip": dlib's 5-point chip, rotated and scaled on the landmarks (dlib's ResNet).
- "box": the detector's box with a margin, not rotated (FaceNet, trained on MTCNN boxes).
- "deepface": DeepFace's eye-line rotation and crop.
- "arcface": the similarity transform of 5 points (eye centres, nose tip, mouth corners)
  onto the 112 x 112 template that ArcFace-style models (MobileFaceNet and the like) were
  trained on, or of 4 (the mouth's centre for its corners) where the detector gives those
  (BlazeFace). A box crop without it collapses their accuracy (README, "Models").
"""

import cv2
import numpy as np

from apps.recognition.pipeline.faces import DetectedFace

ALIGNMENTS = ("dlib_chip", "box", "deepface", "arcface")

# The ArcFace / InsightFace template for a 112 x 112 crop, in the image's order: the
# eye on the image's left (the subject's right), the other eye, the nose tip, the mouth
# corner on the image's left, the other corner.
ARCFACE_TEMPLATE = np.array(
    [
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (41.5493, 92.3655),
        (70.7299, 92.2041),
    ],
    dtype=np.float64,
)
# The same with the mouth's centre (the corners' midpoint) for its corners: BlazeFace's
# keypoints are the eyes, the nose tip and the mouth's centre.
ARCFACE_TEMPLATE_4 = np.vstack([ARCFACE_TEMPLATE[:3], ARCFACE_TEMPLATE[3:].mean(axis=0)])
ARCFACE_SIZE = 112


def rgb_window(image: np.ndarray, box) -> tuple[np.ndarray, int, int]:
    """The face and 60 % of its size around it, in RGB for dlib, with its offset.
    dlib's landmarks and chips read pixels only near the face (a chip with padding 0.25
    turned by 45 degrees reaches 56 % beyond the box), and dlib copies whatever image
    it is given: a whole frame for each face cost more than the landmarks themselves."""
    margin_x, margin_y = round(0.6 * box.w), round(0.6 * box.h)
    x0, y0 = max(0, box.x - margin_x), max(0, box.y - margin_y)
    window = image[y0 : box.y + box.h + margin_y, x0 : box.x + box.w + margin_x]
    # cvtColor: several times faster than numpy's reversed-stride copy.
    return cv2.cvtColor(window, cv2.COLOR_BGR2RGB), x0, y0


def arcface_points_from_68(points: np.ndarray) -> np.ndarray:
    """The template's 5 points from dlib's 68 landmarks: each eye's six points averaged,
    the nose tip (30), the mouth corners (48, 54)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 rotation, uniform scale and translation taking `source` points nearest
    to `target` in least squares (Umeyama, 1991), as InsightFace's alignment computes it.
    Written here because it is ten lines and the libraries that have it (scikit-image)
    would be a dependency for this alone; OpenCV's estimateAffinePartial2D only offers
    robust (RANSAC / LMedS) fits, which on five points may drop one."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[-1] = -1  # no reflection
    rotation = u @ np.diag(signs) @ vt
    scale = float((singular * signs).sum() / source_centred.var(axis=0).sum())
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = target_mean - matrix[:, :2] @ source_mean
    return matrix


def arcface_crop(image: np.ndarray, points: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The face warped onto the template: `points` (5, 2) or, with the mouth's centre
    for its corners, (4, 2), in the image's pixels. A face much larger than the crop is
    first shrunk by area around itself, since warpAffine samples pixels rather than
    averaging them (a 600-px face would alias)."""
    points = np.asarray(points, dtype=np.float64)
    template = (ARCFACE_TEMPLATE if len(points) == 5 else ARCFACE_TEMPLATE_4) * (size / ARCFACE_SIZE)
    matrix = similarity_transform(points, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # The part of the image the crop covers, found by mapping its corners back.
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([(0, 0, 1), (size, 0, 1), (0, size, 1), (size, size, 1)], dtype=np.float64)
        mapped = corners @ inverse.T
        height, width = image.shape[:2]
        x0, y0 = np.floor(mapped.min(axis=0)).astype(int)
        x1, y1 = np.ceil(mapped.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 > x0 and y1 > y0:
            # Shrunk to twice the crop's scale: warpAffine's bilinear step then halves it.
            factor = 2 * scale
            window = image[y0:y1, x0:x1]
            small = cv2.resize(
                window,
                (max(1, round(window.shape[1] * factor)), max(1, round(window.shape[0] * factor))),
                interpolation=cv2.INTER_AREA,
            )
            ratio_x, ratio_y = small.shape[1] / window.shape[1], small.shape[0] / window.shape[0]
            image = small
            points = (points - (x0, y0)) * (ratio_x, ratio_y)
            matrix = similarity_transform(points, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def dlib_chip(image: np.ndarray, face: DetectedFace, *, size: int, padding: float) -> np.ndarray:
    """dlib's chip: the face rotated and scaled on its 5 landmarks to the model's input,
    with `padding` (a share of the face's size) around it. dlib's ResNet was trained on
    150-px chips with padding 0.25; fed DeepFace's eye-line crop it loses accuracy
    (DESIGN.md). BGR out, as DeepFace's clients take it."""
    import dlib

    box = face.box
    rgb, ox, oy = rgb_window(image, box)
    shape = dlib.full_object_detection(
        dlib.rectangle(box.x - ox, box.y - oy, box.x - ox + box.w, box.y - oy + box.h),
        [dlib.point(x - ox, y - oy) for x, y in face.landmarks],
    )
    chip_rgb = dlib.get_face_chip(rgb, shape, size=size, padding=padding)
    return np.ascontiguousarray(chip_rgb[:, :, ::-1])


def box_crop(image: np.ndarray, face: DetectedFace, *, size: int, padding: float) -> np.ndarray:
    """The detector's box, squared and widened by `padding` of its side on each side,
    not rotated: FaceNet was trained on MTCNN boxes with a margin, cut this way."""
    box = face.box
    side = round(max(box.w, box.h) * (1 + 2 * padding))
    x0 = box.x + box.w // 2 - side // 2
    y0 = box.y + box.h // 2 - side // 2
    window = image[max(0, y0) : y0 + side, max(0, x0) : x0 + side]
    # Black where the square leaves the image, so the face stays centred.
    window = cv2.copyMakeBorder(
        window,
        max(0, -y0),
        side - window.shape[0] - max(0, -y0),
        max(0, -x0),
        side - window.shape[1] - max(0, -x0),
        cv2.BORDER_CONSTANT,
        value=(0, 0, 0),
    )
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def deepface_crop(
    image: np.ndarray, face: DetectedFace, *, input_shape: tuple[int, int], normalization: str, detector: str
) -> np.ndarray:
    """DeepFace's own eye-line alignment and resize, on a padded window around the
    face instead of the whole (possibly huge) frame; (1, h, w, 3), normalized."""
    from deepface.models.Detector import FacialAreaRegion
    from deepface.modules import detection, preprocessing

    box = face.box
    # One face size of black margin on each side, as DeepFace's border provides.
    window = cv2.copyMakeBorder(
        image[max(0, box.y - box.h) : box.y + 2 * box.h, max(0, box.x - box.w) : box.x + 2 * box.w],
        max(0, box.h - box.y),
        0,
        max(0, box.w - box.x),
        0,
        cv2.BORDER_CONSTANT,
        value=[0, 0, 0],
    )
    ox, oy = box.x - box.w, box.y - box.h

    def shift(point):
        return None if point is None else (point[0] - ox, point[1] - oy)

    area = FacialAreaRegion(
        x=box.w,
        y=box.h,
        w=box.w,
        h=box.h,
        left_eye=shift(face.left_eye),
        right_eye=shift(face.right_eye),
        confidence=face.confidence,
    )
    extracted = detection.extract_face(
        facial_area=area,
        img=window,
        align=face.left_eye is not None and face.right_eye is not None,
        expand_percentage=0,
        width_border=0,
        height_border=0,
        detector_backend=detector,
    )
    height, width = input_shape
    resized = preprocessing.resize_image(img=extracted.img, target_size=(width, height))
    return preprocessing.normalize_input(img=resized, normalization=normalization)
