"""Detect, align and embed faces with DeepFace's detectors and models.

A FaceAnalyzer loads its detector and model once; a worker process keeps one per
(model, detector) for its whole life, so no frame pays for loading a model.
"""

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from apps.recognition.pipeline import alignment as crops
from apps.recognition.pipeline import catalog, quality, tiling
from apps.recognition.pipeline.calibration import normalized
from apps.recognition.pipeline.face_mesh import FaceMesh, arcface_points_from_mesh
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


@cache
def _shape_predictor(path: str):
    """dlib's landmark models, loaded once per process and shared by its analyzers (the
    68-point one takes about a second to load: it would weigh on a worker's cold start
    once per model)."""
    import dlib

    return dlib.shape_predictor(path)


@cache
def _face_mesh(path: str) -> FaceMesh:
    return FaceMesh(path)


def mirror_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Each face's embedding averaged with its mirror image's, both normalized first."""
    return normalized(normalized(plain) + normalized(mirrored))


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
        detect_tile_px: int = 0,
        alignment: str | None = None,
        padding: float | None = None,
        mirror: bool | None = None,
        model_threads: int = 0,
        arcface_points_source: str | None = None,
    ):
        missing = catalog.missing_files(model_name, detector, deepface_home)
        if missing:
            raise ModelNotReady(model_name, detector, missing)
        catalog.use_deepface_home(deepface_home)
        from deepface.modules import modeling

        from apps.recognition.pipeline import blazeface, embedders

        blazeface.register()
        embedders.register()
        self.spec = catalog.model_spec(model_name)
        # The model's own alignment unless told otherwise (evaluate_faces compares them).
        self.alignment = alignment or self.spec.alignment
        if self.alignment not in crops.ALIGNMENTS:
            raise ValueError(f"Unknown alignment {self.alignment!r}; known: {', '.join(crops.ALIGNMENTS)}")
        self.padding = self.spec.crop_padding if padding is None else padding
        # The model's own choice unless told otherwise (evaluate_faces compares them).
        self.mirror = self.spec.mirror if mirror is None else mirror
        self.detector_name = detector
        self.detect_max_side = detect_max_side
        # Large frames are also seen in tiles of this side (pipeline/tiling.py; 0: whole
        # frames only), by detectors of a small fixed input, for which it pays.
        self.detect_tile_px = detect_tile_px if detector in catalog.TILED_DETECTORS else 0
        self._detector = modeling.build_model(task="face_detector", model_name=detector)
        self._model = modeling.build_model(task="facial_recognition", model_name=model_name)
        if model_threads:
            _limit_threads(self._model, catalog.weights_dir(deepface_home) / self.spec.weight_file, model_threads)
        folder = catalog.weights_dir(deepface_home)
        self._landmarks = _shape_predictor(str(folder / catalog.LANDMARKS_FILE))
        # The ArcFace template's points: MediaPipe's face mesh, dlib's 68 landmarks or
        # BlazeFace's keypoints (catalog.DEFAULT_ARCFACE_POINTS says why the mesh);
        # evaluate_faces compares them.
        self.arcface_points_source = arcface_points_source or catalog.DEFAULT_ARCFACE_POINTS
        if self.arcface_points_source not in catalog.ARCFACE_POINT_SOURCES:
            raise ValueError(f"Unknown source of ArcFace points {self.arcface_points_source!r}")
        if self.arcface_points_source == "keypoints" and detector not in catalog.KEYPOINT_DETECTORS:
            raise ValueError(f"The {detector} detector gives no keypoints for the ArcFace alignment")
        arcface = self.alignment == "arcface"
        self._landmarks_68 = (
            _shape_predictor(str(folder / catalog.LANDMARKS_68_FILE))
            if arcface and self.arcface_points_source == "landmarks68"
            else None
        )
        self._mesh = (
            _face_mesh(str(folder / catalog.FACE_MESH_FILE))
            if arcface and self.arcface_points_source == "mesh"
            else None
        )

    @property
    def model_name(self) -> str:
        return self.spec.name

    def detect(self, image: np.ndarray, min_face_px: int = 0) -> list[DetectedFace]:
        """The faces of the image of at least `min_face_px`, with their landmarks and
        alignment points, in its pixels. Smaller ones are dropped before their landmarks:
        a crowd's tiles find dozens of faces too small to recognize (README, "Detection")."""
        height, width = image.shape[:2]
        regions = self._regions(image, 0, 0)
        for tile in tiling.plan(height, width, self.detect_tile_px):
            found = self._regions(image[tile.window], tile.x, tile.y)
            regions += [region for region in found if not tile.cuts(region.box, width, height)]
        if self.detect_tile_px:  # the same face seen in several passes, once
            kept = tiling.merge([r.box for r in regions], [r.confidence for r in regions])
            regions = [regions[i] for i in kept]
        regions = [region for region in regions if min(region.box.w, region.box.h) >= min_face_px]

        import dlib

        faces = []
        for region in regions:
            box = region.box
            x, y, w, h = box.x, box.y, box.w, box.h
            rgb, ox, oy = crops.rgb_window(image, box)
            rectangle = dlib.rectangle(x - ox, y - oy, x - ox + w, y - oy + h)
            shape = self._landmarks(rgb, rectangle)
            arcface_points = ()
            if self._landmarks_68 is not None:
                parts = self._landmarks_68(rgb, rectangle).parts()
                points = crops.arcface_points_from_68([(p.x, p.y) for p in parts]) + (ox, oy)
                arcface_points = tuple((float(px), float(py)) for px, py in points)
            elif self._mesh is not None:
                corners = np.array([(p.x + ox, p.y + oy) for p in shape.parts()], dtype=np.float64)
                eyes = np.stack([corners[0:2].mean(axis=0), corners[2:4].mean(axis=0)])
                eyes = eyes[np.argsort(eyes[:, 0])]
                mesh = self._mesh.landmarks(image, box, eyes)
                arcface_points = tuple((float(px), float(py)) for px, py in arcface_points_from_mesh(mesh))
            elif self.alignment == "arcface":
                arcface_points = region.arcface_points
            landmarks = tuple((p.x + ox, p.y + oy) for p in shape.parts())
            faces.append(replace(region, landmarks=landmarks, arcface_points=arcface_points))
        return faces

    def _regions(self, image: np.ndarray, x0: int, y0: int) -> list[DetectedFace]:
        """The detector's faces in `image` (the frame, or a tile of it at x0, y0), in the
        frame's pixels, without landmarks yet. It detects on a reduced copy (detection
        cost grows with pixels, accuracy does not)."""
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )

        def up(point):
            return None if point is None else (round(point[0] / scale) + x0, round(point[1] / scale) + y0)

        regions = []
        for area in self._detector.detect_faces(small):
            x, y = max(0, round(area.x / scale)), max(0, round(area.y / scale))
            w = min(width - x, round(area.w / scale))
            h = min(height - y, round(area.h / scale))
            if w <= 0 or h <= 0:
                continue
            regions.append(
                DetectedFace(
                    box=Box(x + x0, y + y0, w, h),
                    confidence=float(area.confidence or 0.0),
                    left_eye=up(area.left_eye),
                    right_eye=up(area.right_eye),
                    arcface_points=tuple(
                        (px / scale + x0, py / scale + y0) for px, py in getattr(area, "arcface_points", ())
                    ),
                )
            )
        return regions

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
        """The faces cut as the model wants them, one batch: BGR in [0, 1] for DeepFace's
        clients (and ours), 0-255 for its Dlib client, which would round [0, 1] back down
        to a different 0-255 image."""
        if self.alignment == "deepface":
            return np.concatenate(
                [
                    crops.deepface_crop(
                        image,
                        face,
                        input_shape=self._model.input_shape,
                        normalization=self.spec.normalization,
                        detector=self.detector_name,
                    )
                    for face in faces
                ]
            )
        size = self._model.input_shape[0]
        if self.alignment == "arcface":
            batch = np.stack([crops.arcface_crop(image, np.asarray(face.arcface_points), size) for face in faces])
        else:
            crop = crops.dlib_chip if self.alignment == "dlib_chip" else crops.box_crop
            batch = np.stack([crop(image, face, size=size, padding=self.padding) for face in faces])
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
        faces = self.detect(image, min_face_px)
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
