from django.core.management.base import BaseCommand, CommandError

from apps.organizations.models import Organization
from apps.organizations.services import organization_create, recognition_missing
from apps.recognition.pipeline import catalog


class Command(BaseCommand):
    help = (
        "Create an organization. Without --model / --detector it gets the configured defaults "
        "(RECOGNITION_DEFAULT_MODEL / _DETECTOR) where their weights are ready, else the first ready ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--model", default="", choices=["", *catalog.MODELS])
        parser.add_argument("--detector", default="", choices=["", *catalog.DETECTORS])

    def handle(self, *args, slug, name, model, detector, **options):
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"Organization {slug!r} already exists.")
        organization = organization_create(slug=slug, name=name, recognition_model=model, detector=detector)
        self.stdout.write(
            f"created organization {organization.slug} (model {organization.recognition_model}, "
            f"detector {organization.detector})"
        )
        missing = recognition_missing(organization)
        if missing:
            self.stderr.write(self.style.WARNING(f"WARNING: {missing}"))
