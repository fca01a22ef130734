import csv
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.recognition.pipeline import catalog, detection_report
from apps.recognition.pipeline import detection_evaluation as de
from apps.recognition.pipeline.calibration import normalized
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady

# The speed target is relative to dlib's HOG detector, timed in the same run.
REFERENCE_DETECTOR = "dlib"


def default_data_dir() -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "datasets" / "groups"


@contextmanager
def one_core():
    """Run on one core, whatever thread pools the detectors start: OpenCV is told to use
    one thread, and the process is pinned to one CPU (Linux), which also bounds any pool
    a library sizes by itself (OMP_NUM_THREADS would come too late: the libraries are
    loaded before a command runs). Both are restored afterwards: a test process goes on."""
    threads = cv2.getNumThreads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cv2.setNumThreads(1)
    cpu = None
    if affinity:
        cpu = min(affinity)
        os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)


def resized_to(image: np.ndarray, side: int) -> np.ndarray:
    """The photo with its longest side `side` px: every timed frame costs the same."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def configuration_label(detector: str, tile_px: int | None) -> str:
    """A measured configuration's name: the detector, and for one that tiles, its tiles."""
    if tile_px is None:
        return detector
    return f"{detector}, tiles {tile_px}" if tile_px else f"{detector}, whole frames"


def xywh(box) -> de.BoxXYWH:
    return (box.x, box.y, box.w, box.h)


class Command(BaseCommand):
    help = (
        "Measure face detectors on the group photos (datasets/groups): faces found against the "
        "counts of faces.csv, annotated boxes matched at an IoU, false detections, and time per "
        "640-px frame on one core against dlib's HOG detector. Prints markdown tables."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--data",
            type=Path,
            default=None,
            help="Folder with faces.csv, boxes.csv and the photos (default: ../shared/datasets/groups).",
        )
        parser.add_argument(
            "--detector",
            action="append",
            choices=list(catalog.DETECTORS),
            help="Detector to measure (repeatable); default: RECOGNITION_DEFAULT_DETECTOR and dlib. "
            "dlib is always measured: the speed target is relative to it.",
        )
        parser.add_argument("--iou", type=float, default=de.DEFAULT_IOU, help="IoU at which a box matches.")
        parser.add_argument("--json", type=Path, dest="json_path", help="Write the figures to this file.")
        parser.add_argument(
            "--draw", type=Path, metavar="DIR", help="Write each photo with its boxes (green) and detections (red)."
        )
        parser.add_argument(
            "--tile-px",
            type=int,
            action="append",
            help="Tile side for detectors that tile (repeatable; 0: whole frames only); default: "
            "RECOGNITION_DETECT_TILE_PX and 0, side by side.",
        )
        parser.add_argument(
            "--small-faces",
            type=Path,
            metavar="LFW_DIR",
            help="Also measure small faces in large frames: photos of this folder's labels.csv (lfw-dev) "
            "shrunk to a given distance between the eyes, laid out in 1,920 x 1,080 frames.",
        )
        parser.add_argument(
            "--small-faces-eyes", default="12,16,20,24,32", help="Distances between the eyes to measure (px)."
        )
        parser.add_argument("--small-faces-count", type=int, default=160, help="Faces per distance.")
        parser.add_argument("--timing-side", type=int, default=640, help="Long side of the timed frames (px).")
        parser.add_argument("--large-side", type=int, default=1920, help="Long side of the timed large frames (px).")
        parser.add_argument("--repeats", type=int, default=5, help="Timed detect calls per photo (median).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        folder = options["data"] or default_data_dir()
        if not (folder / "faces.csv").is_file():
            raise CommandError(
                f"No group photos in {folder}: faces.csv not found (the shared datasets/groups folder; "
                "pass --data DIR)."
            )
        if not 0 < options["iou"] <= 1:
            raise CommandError("--iou must be in (0, 1].")
        if options["repeats"] < 1 or options["timing_side"] < 32:
            raise CommandError("--repeats must be at least 1 and --timing-side at least 32.")
        try:
            photos = de.read_groups(folder)
        except (KeyError, ValueError) as error:
            raise CommandError(f"{folder}: {error}") from None
        names = list(dict.fromkeys(options["detector"] or [settings.RECOGNITION_DEFAULT_DETECTOR, REFERENCE_DETECTOR]))
        if REFERENCE_DETECTOR not in names:
            names.append(REFERENCE_DETECTOR)
        tiles = list(dict.fromkeys(options["tile_px"] or [settings.RECOGNITION_DETECT_TILE_PX, 0]))
        if any(t < 0 for t in tiles):
            raise CommandError("--tile-px must be 0 or more.")
        configurations = [
            (configuration_label(name, tile if name in catalog.TILED_DETECTORS else None), name, tile)
            for name in names
            for tile in (tiles if name in catalog.TILED_DETECTORS else [0])
        ]
        self.progress = not options["no_progress"]
        small_faces = self._small_faces_setup(options) if options["small_faces"] else None
        images = self._read_images(folder, photos)
        frames = {name: resized_to(image, options["timing_side"]) for name, image in images.items()}
        large = {name: resized_to(image, options["large_side"]) for name, image in images.items()}

        results = {}
        with one_core() as cpu:
            for label, name, tile in configurations:
                analyzer = self._analyzer(name, tile)
                detections = self._detect_all(analyzer, photos, images)
                timings = self._time(analyzer, frames, options["repeats"])
                results[label] = self._result(photos, detections, timings, options["iou"])
                results[label]["detector"], results[label]["tile_px"] = name, tile
                results[label]["ms_per_large_frame"] = statistics.median(
                    self._time(analyzer, large, max(1, options["repeats"] // 2)).values()
                )
                if small_faces:
                    recognizer = self._analyzer(name, tile, small_faces[3])
                    results[label]["small_faces"] = self._small_faces(recognizer, *small_faces)
                if options["draw"]:
                    self._draw(options["draw"] / label.replace(" ", "-"), photos, images, detections)
        reference_ms = results[REFERENCE_DETECTOR]["ms_per_frame"]
        for result in results.values():
            result["times_faster_than_dlib"] = reference_ms / result["ms_per_frame"]
            summary = de.Summary(**result["summary"])
            result["checks"] = de.target_checks(summary, result["ms_per_frame"], result["times_faster_than_dlib"])
            if "small_faces" in result:
                result["checks"]["small_faces"] = de.small_faces_check(result["small_faces"])
            result["meets_targets"] = de.meets_targets(result["checks"])

        report = {
            "data": str(folder),
            "iou": options["iou"],
            "timing_side": options["timing_side"],
            "large_side": options["large_side"],
            "repeats": options["repeats"],
            "detect_max_side": settings.RECOGNITION_DETECT_MAX_SIDE,
            "min_face_px": settings.RECOGNITION_MIN_FACE_PX,
            "small_faces_model": small_faces[3] if small_faces else None,
            "threads": 1,
            "cpu": cpu,
            "targets": asdict(de.TARGETS),
            "detectors": results,
        }
        self.stdout.write(detection_report.markdown(report))
        if options["json_path"]:
            options["json_path"].write_text(json.dumps(report, indent=2))

    # --- Steps --------------------------------------------------------------------------

    @staticmethod
    def _read_images(folder: Path, photos: list[de.GroupPhoto]) -> dict[str, np.ndarray]:
        images = {}
        for photo in photos:
            image = cv2.imread(str(folder / photo.file))  # BGR, as the service decodes
            if image is None:
                raise CommandError(f"Cannot read {folder / photo.file} (listed in faces.csv).")
            images[photo.file] = image
        return images

    @staticmethod
    def _analyzer(name: str, tile_px: int, model: str = "Dlib") -> FaceAnalyzer:
        # The service's own analyzer: the same downsizing, tiles and box conversion as a
        # worker's. Detection alone does not depend on the model.
        try:
            return FaceAnalyzer(
                model_name=model,
                detector=name,
                deepface_home=settings.DEEPFACE_HOME,
                detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
                detect_tile_px=tile_px,
            )
        except ModelNotReady as error:
            raise CommandError(f"Detector {name}: {error}") from None

    def _bar(self, items, desc: str):
        return tqdm(items, desc=desc, unit="photo", file=sys.stderr, disable=not self.progress, leave=False)

    def _detect_all(self, analyzer: FaceAnalyzer, photos, images) -> dict[str, list]:
        """Detections on the photos as they are; the analyzer downsizes as the service does."""
        return {
            photo.file: analyzer.detect(images[photo.file])
            for photo in self._bar(photos, f"{analyzer.detector_name}: detecting")
        }

    def _time(self, analyzer: FaceAnalyzer, frames: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
        """Median ms of `repeats` detect calls per frame, after one untimed call (the
        first call on a frame size pays for allocations a camera stream pays once)."""
        timings = {}
        for name in self._bar(list(frames), f"{analyzer.detector_name}: timing"):
            frame = frames[name]
            analyzer.detect(frame)
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                analyzer.detect(frame)
                samples.append(1000 * (time.perf_counter() - started))
            timings[name] = statistics.median(samples)
        return timings

    def _small_faces_setup(self, options) -> tuple:
        """The people of the small faces, each with one photo to shrink (its face's box and
        eye distance as BlazeFace finds them in the photo as it is) and another one
        enrolled whole (its embedding by the default model), the distances to measure, and
        the model's threshold. A person whose photos give no single face is left out."""
        folder = options["small_faces"]
        try:
            eyes = [int(value) for value in options["small_faces_eyes"].split(",") if value.strip()]
        except ValueError:
            raise CommandError("--small-faces-eyes takes distances in px, e.g. 12,20,32.") from None
        if not eyes or min(eyes) < 4 or options["small_faces_count"] < 1:
            raise CommandError("--small-faces-eyes must be 4 px or more, --small-faces-count at least 1.")
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise CommandError(f"No labels.csv in {folder} (the shared datasets/lfw-dev folder).")
        with open(labels, newline="") as file:
            files = [row["file"] for row in csv.DictReader(file)]
        # The same people every run: those with two photos or more, in file order.
        photos_of: dict[Path, list[str]] = {}
        for name in files:
            photos_of.setdefault(Path(name).parent, []).append(name)
        people = [names[:2] for names in photos_of.values() if len(names) >= 2]
        model = settings.RECOGNITION_DEFAULT_MODEL
        reference = self._analyzer("blazeface", 0, model)
        faces, gallery = [], []
        for shrunk, enrolled in self._bar(people, "small faces: reference faces"):
            image, other = cv2.imread(str(folder / shrunk)), cv2.imread(str(folder / enrolled))
            found = reference.detect(image) if image is not None else []
            template = reference.analyze(other) if other is not None else []
            if len(found) == 1 and found[0].left_eye and found[0].right_eye and len(template) == 1:
                face = found[0]
                eye_px = float(np.hypot(*np.subtract(face.left_eye, face.right_eye)))
                faces.append((image, xywh(face.box), eye_px))
                gallery.append(template[0].embedding)
            if len(faces) == options["small_faces_count"]:
                break
        threshold = catalog.model_spec(model).default_threshold
        return faces, normalized(np.stack(gallery)), eyes, model, threshold

    def _small_faces(self, analyzer: FaceAnalyzer, faces, gallery, eyes, model, threshold) -> list[dict]:
        """At each distance between the eyes: the photos shrunk so that their eyes are that
        far apart, each in a cell of a 1,920 x 1,080 frame of grey, each frame through the
        service's whole path (detection as configured, faces under RECOGNITION_MIN_FACE_PX
        dropped, the default model's alignment and embedding). Found: by the detector;
        recognized: kept, and nearest to the same person's other photo among all the
        people's, within the model's threshold."""
        rows = []
        min_face_px = settings.RECOGNITION_MIN_FACE_PX
        for eye_px in eyes:
            found = recognized = total = other = frames = 0
            timings = []
            queue = list(faces)
            while queue:
                first = len(faces) - len(queue)
                frame, truths = de.small_faces_frame(queue, eye_px)
                boxes = [xywh(face.box) for face in analyzer.detect(frame)]
                started = time.perf_counter()
                analyzed = analyzer.analyze(frame, min_face_px=min_face_px)
                timings.append(1000 * (time.perf_counter() - started))
                kept = [xywh(a.face.box) for a in analyzed]
                for person, truth in enumerate(truths, start=first):
                    found += de.finds_face(truth, boxes)
                    index = de.finding(truth, kept)
                    if index is None:
                        continue
                    distances = 1 - gallery @ normalized(analyzed[index].embedding[None])[0]
                    recognized += int(np.argmin(distances) == person and distances[person] <= threshold)
                total += len(truths)
                other += sum(not any(de.finds_face(truth, [box]) for truth in truths) for box in boxes)
                frames += 1
            rows.append(
                {
                    "eye_px": eye_px,
                    "faces": total,
                    "found": found,
                    "recognized": recognized,
                    "frames": frames,
                    "other_detections": other,
                    "ms_per_frame": statistics.median(timings),
                    "faces_per_frame": total / frames,
                }
            )
        return rows

    @staticmethod
    def _result(photos, detections, timings, threshold: float) -> dict:
        rows = []
        scores = []
        for photo in photos:
            found = detections[photo.file]
            score = de.score_photo(photo, [xywh(face.box) for face in found], threshold)
            scores.append(score)
            rows.append(
                {
                    **asdict(score),
                    "ms": round(timings[photo.file], 3),
                    "detections": [
                        {"box": list(xywh(face.box)), "confidence": round(face.confidence, 4)} for face in found
                    ],
                }
            )
        boxes = {photo.file: [xywh(face.box) for face in detections[photo.file]] for photo in photos}
        confidences = {photo.file: [face.confidence for face in detections[photo.file]] for photo in photos}
        return {
            "summary": asdict(de.summarize(scores)),
            "ms_per_frame": statistics.median(timings.values()),
            "recall_by_size": de.recall_by_size(photos, boxes, threshold),
            "score_curve": de.score_curve(photos, confidences),
            "photos": rows,
        }

    @staticmethod
    def _draw(folder: Path, photos, images, detections) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for photo in photos:
            image = images[photo.file].copy()
            # Lines and text grow with the photo, so that they stay legible on large ones.
            unit = max(1.0, max(image.shape[:2]) / 640)
            thick, font = max(1, round(2 * unit)), cv2.FONT_HERSHEY_SIMPLEX
            for x, y, w, h in photo.boxes:
                cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 0), thick)
            for face in detections[photo.file]:
                box = face.box
                cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), (0, 0, 255), thick)
                corner = (box.x, max(round(12 * unit), box.y - round(4 * unit)))
                cv2.putText(
                    image, f"{face.confidence:.2f}", corner, font, 0.45 * unit, (0, 0, 255), thick // 2 + 1, cv2.LINE_AA
                )
            label = f"expected {photo.faces_expected}, found {len(detections[photo.file])}"
            origin = (round(6 * unit), round(20 * unit))
            cv2.putText(image, label, origin, font, 0.6 * unit, (255, 255, 255), 3 * thick, cv2.LINE_AA)
            cv2.putText(image, label, origin, font, 0.6 * unit, (0, 0, 0), thick, cv2.LINE_AA)
            cv2.imwrite(str(folder / photo.file), image)
