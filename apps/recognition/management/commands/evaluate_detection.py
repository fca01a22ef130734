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

from apps.recognition.pipeline import catalog
from apps.recognition.pipeline import detection_evaluation as de
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


def xywh(box) -> de.BoxXYWH:
    return (box.x, box.y, box.w, box.h)


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else f"{part}/0"


def optional(value, spec: str = "", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


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
        parser.add_argument("--timing-side", type=int, default=640, help="Long side of the timed frames (px).")
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
        images = self._read_images(folder, photos)
        frames = {name: resized_to(image, options["timing_side"]) for name, image in images.items()}
        self.progress = not options["no_progress"]

        results = {}
        with one_core() as cpu:
            for name in names:
                analyzer = self._analyzer(name)
                detections = self._detect_all(analyzer, photos, images)
                timings = self._time(analyzer, frames, options["repeats"])
                results[name] = self._result(photos, detections, timings, options["iou"])
                if options["draw"]:
                    self._draw(options["draw"] / name, photos, images, detections)
        reference_ms = results[REFERENCE_DETECTOR]["ms_per_frame"]
        for result in results.values():
            result["times_faster_than_dlib"] = reference_ms / result["ms_per_frame"]
            summary = de.Summary(**result["summary"])
            result["checks"] = de.target_checks(summary, result["ms_per_frame"], result["times_faster_than_dlib"])
            result["meets_targets"] = de.meets_targets(result["checks"])

        report = {
            "data": str(folder),
            "iou": options["iou"],
            "timing_side": options["timing_side"],
            "repeats": options["repeats"],
            "detect_max_side": settings.RECOGNITION_DETECT_MAX_SIDE,
            "threads": 1,
            "cpu": cpu,
            "targets": asdict(de.TARGETS),
            "detectors": results,
        }
        self.stdout.write(self._markdown(report))
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
    def _analyzer(name: str) -> FaceAnalyzer:
        # The service's own analyzer: the same downsizing and box conversion as a worker's.
        try:
            return FaceAnalyzer(
                model_name="Dlib",
                detector=name,
                deepface_home=settings.DEEPFACE_HOME,
                detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
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
        return {
            "summary": asdict(de.summarize(scores)),
            "ms_per_frame": statistics.median(timings.values()),
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

    # --- Output -------------------------------------------------------------------------

    @staticmethod
    def _markdown(report: dict) -> str:
        targets = de.TARGETS
        iou = f"{report['iou']:g}"
        side = report["timing_side"]
        lines = [
            f"| detector | faces found | boxes at IoU≥{iou} | false per 10 photos | "
            f"ms per {side}-px frame (1 thread) | × faster than dlib | meets targets |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, result in report["detectors"].items():
            s = result["summary"]
            failed = [check for check, ok in result["checks"].items() if not ok]
            lines.append(
                f"| {name} | {percent(s['faces_counted'], s['faces_expected'])} "
                f"| {percent(s['boxes_matched'], s['boxes_annotated'])} | {s['false_per_10_photos']:.1f} "
                f"| {result['ms_per_frame']:.1f} | {result['times_faster_than_dlib']:.1f} "
                f"| {'yes' if result['meets_targets'] else 'no: ' + ', '.join(failed)} |"
            )
        lines += [
            "",
            f"Targets: faces found ≥ {targets.faces_found_rate:.0%}, boxes matched ≥ {targets.boxes_matched_rate:.0%} "
            f"at IoU ≥ {iou}, ≤ {targets.false_per_10_photos:g} false detection per 10 photos, "
            f"≤ {targets.ms_per_frame:g} ms per {side}-px frame on one core, "
            f"≥ {targets.times_faster_than_dlib:g}× faster than dlib. Faces found: detections credited up to "
            "the faces expected per photo; false: detections beyond them. Accuracy on the photos as they are "
            f"(the analyzer detects on a copy of at most {report['detect_max_side']} px); timing: median over "
            f"photos of the median of {report['repeats']} calls, each photo resized to {side} px.",
        ]
        for name, result in report["detectors"].items():
            lines += [
                "",
                f"### {name}, per photo",
                "",
                f"| photo | expected | found | counted | false | boxes | matched | unmatched (informational) "
                f"| ms ({side} px) |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for row in result["photos"]:
                lines.append(
                    f"| {row['file']} | {row['expected']} | {row['found']} | {row['counted']} "
                    f"| {row['false_detections']} | {optional(row['annotated'])} | {optional(row['matched'])} "
                    f"| {optional(row['unmatched'])} | {row['ms']:.1f} |"
                )
            s = result["summary"]
            lines.append(
                f"| **all {s['photos']}** | {s['faces_expected']} | "
                f"{sum(row['found'] for row in result['photos'])} | {s['faces_counted']} | {s['false_detections']} "
                f"| {s['boxes_annotated']} | {s['boxes_matched']} | {s['unmatched_in_annotated_photos']} "
                f"| {result['ms_per_frame']:.1f} (median) |"
            )
        lines.append(
            "\nunmatched: detections on photos with annotated boxes that match none of them; VOC photos have "
            "unboxed people in the background, so some are right (check with --draw)."
        )
        return "\n".join(lines)
