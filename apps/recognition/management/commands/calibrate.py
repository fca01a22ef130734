from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ServiceError
from apps.organizations.models import Organization
from apps.recognition.services import calibration_run


class Command(BaseCommand):
    help = (
        "Recommend a match threshold for an organization's model from its own enrolled photos "
        "(genuine vs impostor distances) and save a plot; --apply makes it the threshold in use."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--target-far", type=float, default=None, help="Default: RECOGNITION_TARGET_FAR.")
        parser.add_argument("--apply", action="store_true", help="Use the recommended threshold from now on.")

    def handle(self, *args, slug, target_far, apply, **options):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization {slug!r}.")
        try:
            record = calibration_run(organization=organization, target_far=target_far, apply=apply)
        except ServiceError as error:
            raise CommandError(error.message) from None
        summary = record.summary
        self.stdout.write(
            f"{record.model_name}: genuine pairs {record.genuine_pairs} "
            f"(max distance {summary['genuine'].get('max', float('nan')):.4f}), impostor pairs "
            f"{record.impostor_pairs} (min distance {summary['impostor']['min']:.4f})"
        )
        frr = "n/a" if record.frr is None else f"{record.frr:.4f}"
        self.stdout.write(f"FAR {record.far:.4f}, FRR {frr} on these photos at the recommended threshold")
        self.stdout.write(f"plot: {record.plot.path}")
        self.stdout.write(("applied" if apply else "not applied (use --apply)") + f"; threshold {record.threshold:.4f}")
