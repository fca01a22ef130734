import argparse
import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.recognition.pipeline import alignment, calibration, catalog, datasets, evaluation, images, plots
from apps.recognition.pipeline.engine import ModelNotReady, mirror_average
from apps.recognition.pipeline.face_cache import FaceCache, analyze_photos


def _weights_version(model: str) -> str:
    """Converted weights carry their own digest: faces embedded by an earlier conversion
    are not taken for this one's."""
    provenance = catalog.weights_dir(settings.DEEPFACE_HOME) / f"{catalog.model_spec(model).weight_file}.json"
    if not provenance.is_file():
        return ""
    return "/" + json.loads(provenance.read_text())["onnx"]["sha256"][:12]


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Measure recognition on a folder of labelled photos (CSV file,identity) as the field does: "
        "LFW 10-fold verification, open-set identification (FNIR at FPIR, rank-1, DET plot), the "
        "product's own operating point and the gallery-size curve. Faces are cached on disk."
    )

    def add_arguments(self, parser):
        parser.add_argument("--labels", required=True, type=Path, help="CSV with columns file,identity")
        parser.add_argument("--pairs", type=Path, help="CSV with columns [fold,]file_x,file_y,Decision (Yes/No)")
        parser.add_argument("--enroll-per-identity", type=int, default=1, metavar="K")
        parser.add_argument("--model", default="Dlib", choices=list(catalog.MODELS))
        parser.add_argument(
            "--detector", default=settings.RECOGNITION_DEFAULT_DETECTOR, choices=list(catalog.DETECTORS)
        )
        parser.add_argument("--alignment", choices=alignment.ALIGNMENTS, help="Default: the model's own.")
        parser.add_argument(
            "--arcface-points",
            choices=catalog.ARCFACE_POINT_SOURCES,
            help="Where the ArcFace alignment's points come from: dlib's 68 landmarks (the default) or BlazeFace's "
            "keypoints.",
        )
        parser.add_argument(
            "--padding", type=float, help="Around the face, a share of its size on each side (default: the model's)."
        )
        parser.add_argument(
            "--threshold", type=float, help="Use this threshold instead of the one calibrated for the gallery."
        )
        parser.add_argument("--target-fpir", type=float, default=settings.RECOGNITION_TARGET_FPIR)
        parser.add_argument("--margin", type=float, default=settings.RECOGNITION_MATCH_MARGIN)
        parser.add_argument(
            "--strategy",
            default="centroid",
            choices=evaluation.STRATEGIES,
            help="How a person is scored: their template (centroid, the service's), nearest photo, two nearest.",
        )
        parser.add_argument(
            "--face",
            default="central",
            choices=["central", "largest"],
            help="Which detected face is the labelled one (LFW: the central one).",
        )
        parser.add_argument(
            "--mirror",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Average each face's embedding with its mirror image's (default: as the model's spec says).",
        )
        parser.add_argument("--gallery-sizes", type=_sizes, default=[10, 100, 1000], metavar="N,N,...")
        parser.add_argument(
            "--reference",
            action="store_true",
            help="Measure the model's reference distances on these photos, print them for the catalog, "
            "and use them for the operating point.",
        )
        parser.add_argument("--cache", type=Path, default=None, help="Default: $VAR_DIR/eval-cache/faces.sqlite")
        parser.add_argument("--workers", type=int, default=None, help="Processes analyzing photos (default: cores).")
        parser.add_argument("--json", type=Path, dest="json_path", help="Write the figures to this file.")
        parser.add_argument("--det", type=Path, dest="det_path", help="Write the DET plot (PNG) to this file.")
        parser.add_argument(
            "--face-only",
            action="store_true",
            help="Embed every photo as an organization that keeps faces only stores it: cut down to its largest "
            "face with room around it (images.face_only), as a model change then embeds it again.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        started = time.monotonic()
        labels, k = options["labels"], options["enroll_per_identity"]
        if k < 1:
            raise CommandError("--enroll-per-identity must be at least 1.")
        if not labels.is_file():
            raise CommandError(f"No such file: {labels}")
        model, detector = options["model"], options["detector"]
        spec = catalog.model_spec(model)
        alignment = options["alignment"] or spec.alignment
        padding = spec.crop_padding if options["padding"] is None else options["padding"]
        points = options["arcface_points"] or catalog.DEFAULT_ARCFACE_POINTS
        if points == "keypoints" and detector not in catalog.KEYPOINT_DETECTORS:
            raise CommandError(f"The {detector} detector gives no keypoints: use --arcface-points landmarks68.")
        # The 68 landmarks' faces were cached before the keypoints were a choice: their key stays.
        points_key = f"+{points}" if alignment == "arcface" and points != "landmarks68" else ""
        missing = catalog.missing_files(model, detector, settings.DEEPFACE_HOME)
        if missing:
            raise CommandError(str(ModelNotReady(model, detector, missing)))
        photos = datasets.read_labels(labels)
        pairs = datasets.read_pairs(options["pairs"]) if options["pairs"] else []
        paths = {p.path for p in photos} | {p.x for p in pairs} | {p.y for p in pairs}
        cache = FaceCache(
            options["cache"] or Path(settings.VAR_DIR) / "eval-cache" / "faces.sqlite",
            key=f"{model}/{detector}/{alignment}{points_key}:{padding:g}/{settings.RECOGNITION_DETECT_MAX_SIDE}"
            + _weights_version(model)
            + (
                f"/face-only:{images.FACE_ONLY_SCALE:g}x{images.FACE_ONLY_CANVAS:g}:{options['face']}"
                if options["face_only"]
                else ""
            ),
        )
        analyzer_options = {
            "model_name": model,
            "detector": detector,
            "deepface_home": str(settings.DEEPFACE_HOME),
            "detect_max_side": settings.RECOGNITION_DETECT_MAX_SIDE,
            "alignment": alignment,
            "padding": padding,
            "arcface_points_source": points,
        }
        mirror = spec.mirror if options["mirror"] is None else options["mirror"]
        try:
            faces = analyze_photos(
                paths,
                analyzer_options=analyzer_options,
                cache=cache,
                workers=options["workers"],
                progress=not options["no_progress"],
                face_only=options["face"] if options["face_only"] else None,
            )
        finally:
            cache.close()
        embeddings = self._labelled_embeddings(faces, options["face"], mirror)
        if not any(v is not None for v in embeddings.values()):
            raise CommandError("No face was found in any photo.")

        report = {
            "model": model,
            "detector": detector,
            "alignment": alignment,
            "padding": padding,
            "face": options["face"],
            "mirror": mirror,
            "face_only": options["face_only"],
            "strategy": options["strategy"],
            "margin": options["margin"],
            "target_fpir": options["target_fpir"],
            "enroll_per_identity": k,
            "photos": len(photos),
            "identities": len({p.identity for p in photos}),
            "photos_without_face": sum(embeddings[p.path] is None for p in photos),
        }
        report.update(self._verification(embeddings, pairs))

        reference = spec.reference
        if options["reference"]:
            reference = self._measure_reference(embeddings, photos, f"{labels.parent.name}, {model}/{detector}")
        open_set = evaluation.split_open_set(embeddings, photos, enroll_per_identity=k)
        common = {
            "strategy": options["strategy"],
            "margin": options["margin"],
            "target_fpir": options["target_fpir"],
            "reference": reference,
            "threshold": options["threshold"],
        }
        try:
            figures, (mated, nonmated) = evaluation.identification(open_set, **common)
            report.update(figures)
            report["gallery_size_curve"] = evaluation.gallery_size_curve(
                embeddings, photos, enroll_per_identity=k, sizes=options["gallery_sizes"], **common
            )
        except ValueError as error:
            raise CommandError(f"{error} (or run with --reference to measure one on these photos)") from None
        if options["det_path"]:
            self._det_plot(options["det_path"], report, open_set, mated, nonmated)
        report["seconds"] = round(time.monotonic() - started, 1)
        self._print(report)
        if options["json_path"]:
            options["json_path"].write_text(json.dumps(report, indent=2, default=float))

    @staticmethod
    def _labelled_embeddings(faces: dict, rule: str, mirror: bool) -> dict[Path, np.ndarray | None]:
        from PIL import Image

        chosen = {}
        for path, found in faces.items():
            size = None
            if rule == "central" and len(found) > 1:
                with Image.open(path) as image:
                    size = image.size
            index = evaluation.pick_face(found, size, rule)
            if index is None:
                chosen[path] = None
                continue
            face = found[index]
            if mirror:
                chosen[path] = mirror_average(face.embedding[None], face.mirrored[None])[0]
            else:
                chosen[path] = calibration.normalized(face.embedding[None])[0]
        return chosen

    @staticmethod
    def _verification(embeddings: dict, pairs: list) -> dict:
        if not pairs:
            return {"pairs": 0, "verification_accuracy_10fold": None}
        distances = np.array(
            [
                float(1.0 - embeddings[p.x] @ embeddings[p.y])
                if embeddings.get(p.x) is not None and embeddings.get(p.y) is not None
                else np.inf
                for p in pairs
            ]
        )
        same = np.array([p.same for p in pairs])
        figures = {"pairs": len(pairs), "pairs_without_face": int(np.isinf(distances).sum())}
        folds = [p.fold for p in pairs]
        if None in folds:
            figures["verification_accuracy_10fold"] = None
            figures["verification_best_accuracy"] = float(
                ((distances <= evaluation.best_threshold(distances, same)) == same).mean()
            )
        else:
            folded = evaluation.verification_10fold(distances, same, np.array(folds))
            figures["verification_accuracy_10fold"] = folded["accuracy"]
            figures["verification_std_10fold"] = folded["std"]
            figures["verification_threshold_mean"] = float(np.mean(folded["fold_thresholds"]))
        figures["tar_at_far_0.001"], figures["threshold_at_far_0.001"] = evaluation.tar_at_far(distances, same, 0.001)
        return figures

    def _measure_reference(self, embeddings, photos, source) -> calibration.ScoreReference:
        reference = evaluation.measure_reference(embeddings, photos, source=source)
        self.stdout.write("reference for catalog.py:")
        self.stdout.write(f"    ScoreReference(\n        impostor={reference.impostor!r},")
        self.stdout.write(f"        misses={reference.misses!r},\n        source={reference.source!r},\n    )")
        return reference

    @staticmethod
    def _det_plot(path: Path, report: dict, open_set, mated, nonmated) -> None:
        _, fpir, fnir = evaluation.det_curve(mated, open_set.mates, nonmated, points=1000)
        curves = {f"{report['model']}, {report['detector']}, K={report['enroll_per_identity']}": (fpir, fnir)}
        marks = [
            (
                f"operating point (threshold {report['threshold']:.3f}, margin {report['margin']:g})",
                report["strangers_accepted"],
                1 - report["mated_recognized"],
            )
        ]
        title = (
            f"{report['gallery']} people enrolled, {report['mated_probes']} mated and "
            f"{report['nonmated_probes']} non-mated probes"
        )
        path.write_bytes(plots.det_plot_png(curves, title, marks))

    def _print(self, report: dict) -> None:
        for key, value in report.items():
            if key == "gallery_size_curve":
                self.stdout.write("gallery size curve (at the product's operating point):")
                self.stdout.write(
                    "  gallery  repeats  threshold  strangers_accepted  expected_fpir  recognized  misidentified"
                )
                for row in value:
                    self.stdout.write(
                        f"  {row['gallery']:7d}  {row['repeats']:7d}  {row['threshold']:9.4f}  "
                        f"{row['strangers_accepted']:18.4f}  {row['expected_fpir']:13.4f}  "
                        f"{row['mated_recognized']:10.4f}  {row['mated_misidentified']:13.4f}"
                    )
            else:
                self.stdout.write(f"{key:32} {value:.4f}" if isinstance(value, float) else f"{key:32} {value}")
