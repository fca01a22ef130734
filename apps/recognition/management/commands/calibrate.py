from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ServiceError
from apps.frames.services import calibration_run
from apps.organizations.models import Organization


def _percent(value) -> str:
    return "unknown" if value is None else f"{100 * value:.2f} %"


class Command(BaseCommand):
    help = (
        "Derive an organization's match threshold from its target FPIR (the share of strangers it accepts "
        "being called someone) and its gallery, now; this also runs in the background whenever people are "
        "enrolled or removed. Prints the rates to expect today and as the gallery grows."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--target-fpir", type=float, default=None, help="Default: the organization's (RECOGNITION_TARGET_FPIR)."
        )

    def handle(self, *args, slug, target_fpir, **options):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization {slug!r}.")
        try:
            record = calibration_run(organization=organization, target_fpir=target_fpir)
        except ServiceError as error:
            raise CommandError(error.message) from None
        organization.refresh_from_db()
        self.stdout.write(
            f"{record.model_name}: {record.people} people, {record.photos} photos, "
            f"{record.impostor_pairs} impostor pairs (tail from the {record.source})"
        )
        self.stdout.write(
            f"threshold {record.threshold:.4f} for target FPIR {record.target_fpir:g}: expected "
            f"{_percent(record.expected_fpir)} of strangers accepted, {_percent(record.expected_fnir)} of "
            "enrolled people's photos missed"
        )
        self.stdout.write("as the gallery grows (at this threshold / at the threshold the target then needs):")
        for row in record.summary["growth"]:
            self.stdout.write(
                f"  {row['people']:>7,} people: strangers accepted {_percent(row['fpir_at_threshold'])}; "
                f"threshold {row['threshold_for_target']:.4f}, missed {_percent(row['fnir'])}"
            )
        self.stdout.write(f"plot: {record.plot.path}")
        source = organization.threshold_source_for(record.model_name)
        if source == "explicit":
            self.stdout.write(
                f"in use: the explicit threshold {organization.threshold:.4f}, which overrides the target"
            )
        else:
            self.stdout.write(f"in use: {organization.threshold:.4f}")
