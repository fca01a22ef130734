from django.core.management.base import BaseCommand, CommandError

from apps.organizations.models import Camera, Organization
from apps.organizations.services import ALL_SCOPES, api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization; the key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--scope", action="append", choices=ALL_SCOPES, help="Repeatable; default: all but kiosk:check-in."
        )
        parser.add_argument("--camera", help="The camera's name: the one a kiosk key checks in at.")

    def handle(self, *args, slug, name, scope, camera, **options):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization {slug!r}.")
        kiosk_camera = None
        if camera is not None:
            kiosk_camera = Camera.objects.filter(organization=organization, name=camera).first()
            if kiosk_camera is None:
                raise CommandError(f"{slug} has no camera {camera!r}.")
        try:
            api_key, raw_key = api_key_create(organization=organization, name=name, scopes=scope, camera=kiosk_camera)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"API key {api_key.prefix} for {slug} with scopes {', '.join(api_key.scopes)}.")
        self.stdout.write("It is shown only this once; only its hash is stored.")
        self.stdout.write(raw_key)
