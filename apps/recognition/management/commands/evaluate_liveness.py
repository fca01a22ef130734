import csv
import statistics
import sys
import time
from pathlib import Path

import cv2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.recognition.pipeline import catalog, liveness
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def shared(name: str) -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "datasets" / name


class Command(BaseCommand):
    help = (
        "Measure passive liveness as ISO/IEC 30107-3 does: BPCER on bona fide faces (folders of photos, "
        "frames of videos) and APCER per attack type on labelled attacks (a CSV of file,attack), with "
        "their counts and 95 % intervals, at each threshold on the live score. One thread."
    )

    def add_arguments(self, parser):
        parser.add_argument("--real", type=Path, action="append", help="A folder of real faces (repeatable).")
        parser.add_argument("--real-limit", type=int, default=500, help="Photos per folder, evenly spread.")
        parser.add_argument("--video", type=Path, action="append", help="A video of real faces (repeatable).")
        parser.add_argument("--video-every", type=int, default=5, help="Score every Nth frame.")
        parser.add_argument("--attacks", type=Path, help="CSV of file,attack (paths relative to it).")
        parser.add_argument("--threshold", type=float, action="append", help="Live-score thresholds (repeatable).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        model_path = catalog.weights_dir(settings.DEEPFACE_HOME) / catalog.LIVENESS_WEIGHTS
        if not model_path.is_file():
            raise CommandError(f"{catalog.LIVENESS_WEIGHTS} is not provisioned: run `make models`.")
        try:
            self.analyzer = FaceAnalyzer(
                model_name="Dlib",  # detection only: the model is never run
                detector=settings.RECOGNITION_DEFAULT_DETECTOR,
                deepface_home=settings.DEEPFACE_HOME,
                detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
            )
        except ModelNotReady as error:
            raise CommandError(str(error)) from None
        self.model = liveness.LivenessModel(model_path)
        self.progress, self.timings = not options["no_progress"], []
        thresholds = sorted(set(options["threshold"] or [0.3, 0.5, 0.7]))
        real = options["real"] or [shared("faces"), shared("lfw-dev")]
        videos = options["video"] if options["video"] is not None else [shared("videos") / "hamilton_clip.mp4"]

        bona_fide = {}
        for folder in real:
            if not folder.is_dir():
                raise CommandError(f"No such folder: {folder}")
            bona_fide[f"photos: {folder.name}"] = self._photos(folder, options["real_limit"])
        for video in videos:
            if not video.is_file():
                raise CommandError(f"No such video: {video}")
            bona_fide[f"video frames: {video.name}"] = self._video(video, options["video_every"])
        attacks = self._attacks(options["attacks"]) if options["attacks"] else {}

        lines = [
            f"| bona fide source | faces | {' | '.join(f'BPCER at {t:g}' for t in thresholds)} |",
            "|---|---|" + "---|" * len(thresholds),
        ]
        everything = [score for scores in bona_fide.values() for score in scores]
        for name, scores in [*bona_fide.items(), ("all", everything)]:
            lines.append(f"| {name} | {len(scores)} | {self._cells(scores, thresholds, bona_fide=True)} |")
        lines += ["", f"| attack type | attempts | {' | '.join(f'APCER at {t:g}' for t in thresholds)} |"]
        lines.append("|---|---|" + "---|" * len(thresholds))
        for attack, scores in attacks.items():
            lines.append(f"| {attack} | {len(scores)} | {self._cells(scores, thresholds, bona_fide=False)} |")
        if not attacks:
            lines.append(f"| (no attacks given: --attacks CSV) | 0 |{' — |' * len(thresholds)}")
        ms = statistics.median(self.timings) if self.timings else 0.0
        lines.append(
            f"\nA face is every detected face of at least RECOGNITION_MIN_FACE_PX ({settings.RECOGNITION_MIN_FACE_PX} "
            f"px); intervals: Wilson's 95 %. Liveness: {ms:.1f} ms a face (median, one thread)."
        )
        self.stdout.write("\n".join(lines))

    @staticmethod
    def _cells(scores, thresholds, *, bona_fide: bool) -> str:
        cells = []
        for threshold in thresholds:
            errors, total = liveness.error_rate(scores, threshold, bona_fide=bona_fide)
            low, high = liveness.wilson_interval(errors, total)
            rate = 100 * errors / total if total else 0.0
            cells.append(f"{rate:.1f} % ({errors}/{total}; {100 * low:.1f}-{100 * high:.1f})")
        return " | ".join(cells)

    def _score(self, image) -> list[float]:
        faces = [face for face in self.analyzer.detect(image) if face.box.w >= settings.RECOGNITION_MIN_FACE_PX]
        started = time.perf_counter()
        scores = self.model.scores(image, [face.box for face in faces])
        if faces:
            self.timings.append(1000 * (time.perf_counter() - started) / len(faces))
        return scores

    def _bar(self, items, desc: str):
        return tqdm(items, desc=desc, file=sys.stderr, disable=not self.progress, leave=False)

    def _photos(self, folder: Path, limit: int) -> list[float]:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        if limit and len(paths) > limit:
            paths = [paths[round(i * len(paths) / limit)] for i in range(limit)]
        scores = []
        for path in self._bar(paths, folder.name):
            image = cv2.imread(str(path))
            if image is not None:
                scores += self._score(image)
        return scores

    def _video(self, path: Path, every: int) -> list[float]:
        capture, scores, index = cv2.VideoCapture(str(path)), [], 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % max(1, every) == 0:
                scores += self._score(frame)
            index += 1
        capture.release()
        return scores

    def _attacks(self, labels: Path) -> dict[str, list[float]]:
        if not labels.is_file():
            raise CommandError(f"No such file: {labels}")
        by_type: dict[str, list[float]] = {}
        with open(labels, newline="") as file:
            for row in csv.DictReader(file):
                image = cv2.imread(str(labels.parent / row["file"]))
                if image is None:
                    raise CommandError(f"Cannot read {row['file']} (listed in {labels.name}).")
                by_type.setdefault(row["attack"], []).extend(self._score(image))
        return by_type
