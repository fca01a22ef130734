from django.core.management.base import BaseCommand, CommandError

from apps.organizations.models import Organization
from apps.organizations.services import organization_create
from apps.recognition.pipeline import catalog


class Command(BaseCommand):
    help = "Create an organization."

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
