"""Detect, align and embed faces with DeepFace's detectors and models.

A FaceAnalyzer loads its detector and model once; a worker process keeps one per
(model, detector) for its whole life, so no frame pays for loading a model.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from apps.recognition.pipeline import catalog, quality
from apps.recognition.pipeline.calibration import normalized
from apps.recognition.pipeline.faces import Box, DetectedFace


class ModelNotReady(RuntimeError):
    def __init__(self, model_name: str, detector: str, missing: list[str]):
        self.model_name = model_name
        self.detector = detector
        self.missing = missing
        super().__init__(
            f"Model {model_name} with detector {detector} has no weights "
            f"(missing: {', '.join(missing)}). Run `python manage.py provision_models --model "
            f"{model_name}` (or `--from-file PATH` on a machine without network)."
        )


def _limit_threads(client, weight_file: Path, threads: int) -> None:
    """Give a DeepFace client that runs on ONNX Runtime a session of `threads` threads.
    DeepFace's session takes every core: in a worker that shares the machine with other
    workers, the web server and PostgreSQL, that costs more than it gains (README,
    "Speed, measured"). dlib's model runs on one thread anyway."""
    import onnxruntime

    session = getattr(client, "model", None)
    if not isinstance(session, onnxruntime.InferenceSession):
        return
    if session.get_session_options().intra_op_num_threads == threads:
        return  # DeepFace keeps one client per process: limited already
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    client.model = onnxruntime.InferenceSession(
        str(weight_file), sess_options=options, providers=session.get_providers()
    )


def mirror_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Each face's embedding averaged with its mirror image's, both normalized first."""
    return normalized(normalized(plain) + normalized(mirrored))


def _rgb_window(image: np.ndarray, box: Box) -> tuple[np.ndarray, int, int]:
    """The face and 60 % of its size around it, in RGB for dlib, with its offset.
    dlib's landmarks and chips read pixels only near the face (a chip with padding 0.25
    turned by 45 degrees reaches 56 % beyond the box), and dlib copies whatever image
    it is given: a whole frame for each face cost more than the landmarks themselves."""
    margin_x, margin_y = round(0.6 * box.w), round(0.6 * box.h)
    x0, y0 = max(0, box.x - margin_x), max(0, box.y - margin_y)
    window = image[y0 : box.y + box.h + margin_y, x0 : box.x + box.w + margin_x]
    # cvtColor: several times faster than numpy's reversed-stride copy.
    return cv2.cvtColor(window, cv2.COLOR_BGR2RGB), x0, y0


@dataclass(frozen=True)
class AnalyzedFace:
    face: DetectedFace
    quality: quality.Quality
    embedding: np.ndarray  # float32, (dimensions,): what matching uses
    # evaluate_faces keeps the face's own and its mirror image's embeddings apart, to
    # measure what averaging them does; None elsewhere.
    views: tuple[np.ndarray, np.ndarray] | None = None


class FaceAnalyzer:
    def __init__(
        self,
        *,
        model_name: str,
        detector: str,
        deepface_home: str | Path,
        detect_max_side: int,
        alignment: str | None = None,
        padding: float | None = None,
        mirror: bool | None = None,
        model_threads: int = 0,
    ):
        missing = catalog.missing_files(model_name, detector, deepface_home)
        if missing:
            raise ModelNotReady(model_name, detector, missing)
        catalog.use_deepface_home(deepface_home)
        from deepface.modules import modeling

        from apps.recognition.pipeline import blazeface

        blazeface.register()
        self.spec = catalog.model_spec(model_name)
        # The model's own alignment unless told otherwise (evaluate_faces compares them).
        self.alignment = alignment or self.spec.alignment
        if self.alignment not in catalog.ALIGNMENTS:
            raise ValueError(f"Unknown alignment {self.alignment!r}; known: {', '.join(catalog.ALIGNMENTS)}")
        self.padding = self.spec.crop_padding if padding is None else padding
        # The model's own choice unless told otherwise (evaluate_faces compares them).
        self.mirror = self.spec.mirror if mirror is None else mirror
        self.detector_name = detector
        self.detect_max_side = detect_max_side
        self._detector = modeling.build_model(task="face_detector", model_name=detector)
        self._model = modeling.build_model(task="facial_recognition", model_name=model_name)
        if model_threads:
            _limit_threads(self._model, catalog.weights_dir(deepface_home) / self.spec.weight_file, model_threads)
        import dlib

        self._landmarks = dlib.shape_predictor(str(catalog.weights_dir(deepface_home) / catalog.LANDMARKS_FILE))

    @property
    def model_name(self) -> str:
        return self.spec.name

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Detect on a reduced copy (detection cost grows with pixels, accuracy does
        not), and return boxes in the original image's pixels."""
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )

        def up(point):
            return None if point is None else (round(point[0] / scale), round(point[1] / scale))

        import dlib

        faces = []
        for area in self._detector.detect_faces(small):
            x, y = max(0, round(area.x / scale)), max(0, round(area.y / scale))
            w = min(width - x, round(area.w / scale))
            h = min(height - y, round(area.h / scale))
            if w <= 0 or h <= 0:
                continue
            box = Box(x, y, w, h)
            rgb, ox, oy = _rgb_window(image, box)
            shape = self._landmarks(rgb, dlib.rectangle(x - ox, y - oy, x - ox + w, y - oy + h))
            faces.append(
                DetectedFace(
                    box=box,
                    confidence=float(area.confidence or 0.0),
                    left_eye=up(area.left_eye),
                    right_eye=up(area.right_eye),
                    landmarks=tuple((p.x + ox, p.y + oy) for p in shape.parts()),
                )
            )
        return faces

    def embed(self, image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """Embed every face of one image in a single model call; (n, dimensions). For a
        model whose spec says `mirror`, each face's embedding is averaged with its
        mirror image's (both normalized): measured on lfw-dev, worth its second pass."""
        if not faces:
            return np.zeros((0, self.spec.dimensions), dtype=np.float32)
        if not self.mirror:
            return self._forward(self._aligned(image, faces))
        return mirror_average(*self.embed_views(image, faces))

    def embed_views(self, image: np.ndarray, faces: list[DetectedFace]) -> tuple[np.ndarray, np.ndarray]:
        """The faces and their mirror images embedded apart, in one model call
        (evaluate_faces keeps both, so that it can measure what averaging does)."""
        batch = self._aligned(image, faces)
        both = self._forward(np.concatenate([batch, np.ascontiguousarray(batch[:, :, ::-1])]))
        return both[: len(faces)], both[len(faces) :]

    def _aligned(self, image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        if self.alignment == "deepface":
            return np.concatenate([self._deepface_crop(image, face) for face in faces])
        crop = self._dlib_chip if self.alignment == "dlib_chip" else self._box_crop
        batch = np.stack([crop(image, face) for face in faces])
        # DeepFace's clients take BGR in [0, 1]; its Dlib client takes 0-255 as well, and
        # would round [0, 1] back down to a different 0-255 image.
        return batch if self.spec.name == "Dlib" else batch.astype(np.float32) / 255

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        vectors = np.asarray(self._model.forward(batch), dtype=np.float32)
        return vectors.reshape(len(batch), self.spec.dimensions)

    def analyze(
        self, image: np.ndarray, *, min_face_px: int = 0, views: bool = False, on_stage=None
    ) -> list[AnalyzedFace]:
        """The one way through the pipeline, for frames, enrollment, identify / verify /
        detect, evaluation and the benchmark: detect, drop faces smaller than
        `min_face_px` (too small to recognize), measure each face's quality, and embed
        them all in one model call. `views` also keeps each face's own and mirror
        image's embeddings (evaluate_faces); `on_stage("detect")` and
        `on_stage("embed")` are called as each stage ends (the frame's timings)."""
        faces = [face for face in self.detect(image) if min(face.box.w, face.box.h) >= min_face_px]
        if on_stage:
            on_stage("detect")
        if views and faces:
            plain, mirrored = self.embed_views(image, faces)
            vectors = mirror_average(plain, mirrored) if self.mirror else plain
            kept = list(zip(plain, mirrored, strict=True))
        else:
            vectors = self.embed(image, faces)
            kept = [None] * len(faces)
        if on_stage:
            on_stage("embed")
        return [
            AnalyzedFace(face, quality.measure(image, face), vector, view)
            for face, vector, view in zip(faces, vectors, kept, strict=True)
        ]

    def _dlib_chip(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """dlib's chip: the face rotated and scaled on its 5 landmarks to the model's
        input, with `padding` (a share of the face's size) around it. dlib's ResNet was
        trained on 150-px chips with padding 0.25; fed DeepFace's eye-line crop it loses
        accuracy (DESIGN.md)."""
        import dlib

        box = face.box
        rgb, ox, oy = _rgb_window(image, box)
        shape = dlib.full_object_detection(
            dlib.rectangle(box.x - ox, box.y - oy, box.x - ox + box.w, box.y - oy + box.h),
            [dlib.point(x - ox, y - oy) for x, y in face.landmarks],
        )
        chip_rgb = dlib.get_face_chip(rgb, shape, size=self._model.input_shape[0], padding=self.padding)
        # DeepFace's Dlib client takes BGR and flips it to RGB itself.
        return np.ascontiguousarray(chip_rgb[:, :, ::-1])

    def _box_crop(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The detector's box, squared and widened by `padding` of its side on each side,
        not rotated: FaceNet was trained on MTCNN boxes with a margin, cut this way."""
        box = face.box
        side = round(max(box.w, box.h) * (1 + 2 * self.padding))
        x0 = box.x + box.w // 2 - side // 2
        y0 = box.y + box.h // 2 - side // 2
        height, width = image.shape[:2]
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
        size = self._model.input_shape[0]
        return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)

    def _deepface_crop(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """DeepFace's own eye-line alignment and resize, on a padded window around the
        face instead of the whole (possibly huge) frame."""
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
            detector_backend=self.detector_name,
        )
        height, width = self._model.input_shape
        resized = preprocessing.resize_image(img=extracted.img, target_size=(width, height))
        return preprocessing.normalize_input(img=resized, normalization=self.spec.normalization)
