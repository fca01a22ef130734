import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.recognition.pipeline import catalog, evaluation
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady


class Command(BaseCommand):
    help = (
        "Measure the recognition pipeline on a folder of labelled photos (CSV file,identity): "
        "pair accuracy, open-set rank-1 and the share of strangers accepted as someone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--labels", required=True, type=Path, help="CSV with columns file,identity")
        parser.add_argument("--pairs", type=Path, help="CSV with columns file_x,file_y,Decision (Yes/No)")
        parser.add_argument("--enroll-per-identity", type=int, default=1, metavar="K")
        parser.add_argument("--model", default="Dlib", choices=list(catalog.MODELS))
        parser.add_argument(
            "--detector", default=settings.RECOGNITION_DEFAULT_DETECTOR, choices=list(catalog.DETECTORS)
        )
        parser.add_argument("--threshold", type=float, help="Default: the model's built-in threshold.")
        parser.add_argument("--margin", type=float, default=settings.RECOGNITION_MATCH_MARGIN)
        parser.add_argument("--strategy", default="nearest", choices=evaluation.STRATEGIES)
        parser.add_argument("--alignment", choices=catalog.ALIGNMENTS, help="Default: the model's own.")
        parser.add_argument("--json", type=Path, dest="json_path", help="Write the figures to this file.")

    def handle(
        self,
        *args,
        labels,
        pairs,
        enroll_per_identity,
        model,
        detector,
        threshold,
        margin,
        strategy,
        alignment,
        json_path,
        **options,
    ):
        if enroll_per_identity < 1:
            raise CommandError("--enroll-per-identity must be at least 1.")
        if not labels.is_file():
            raise CommandError(f"No such file: {labels}")
        threshold = catalog.model_spec(model).default_threshold if threshold is None else threshold
        try:
            analyzer = FaceAnalyzer(
                model_name=model,
                detector=detector,
                deepface_home=settings.DEEPFACE_HOME,
                detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
                alignment=alignment,
            )
        except ModelNotReady as error:
            raise CommandError(str(error)) from None
        photos = evaluation.read_labels(labels)
        pair_rows = evaluation.read_pairs(pairs) if pairs else []
        paths = [p.path for p in photos] + [x for x, _, _ in pair_rows] + [y for _, y, _ in pair_rows]
        embeddings = evaluation.embed_largest_faces(analyzer, paths)
        report = {
            "model": model,
            "detector": detector,
            "threshold": threshold,
            "margin": margin,
            "strategy": strategy,
            "alignment": analyzer.alignment,
            "enroll_per_identity": enroll_per_identity,
            "pair_accuracy": evaluation.pair_accuracy(embeddings, pair_rows, threshold) if pair_rows else None,
            "pairs": len(pair_rows),
            **evaluation.open_set(
                embeddings,
                photos,
                enroll_per_identity=enroll_per_identity,
                threshold=threshold,
                margin=margin,
                strategy=strategy,
            ),
        }
        for key, value in report.items():
            self.stdout.write(f"{key:22} {value:.4f}" if isinstance(value, float) else f"{key:22} {value}")
        if json_path:
            json_path.write_text(json.dumps(report, indent=2))
