import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.organizations.models import Membership, Organization
from apps.organizations.services import api_key_create, organization_create, recognition_missing

DEMO_SLUG = "demo"
DEMO_USER = "admin"


class Command(BaseCommand):
    help = "Create the demo organization, an admin login and an API key (printed once). Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=DEMO_SLUG).first()
        if organization is not None:
            self.stdout.write(
                f"Demo organization '{DEMO_SLUG}' exists (model {organization.recognition_model}); "
                f"admin login '{DEMO_USER}'. Its API key was shown when it was created; "
                f"make another with: python manage.py create_api_key {DEMO_SLUG}"
            )
            return
        organization = organization_create(slug=DEMO_SLUG, name="Demo organization")
        model = organization.recognition_model
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = user_model.objects.create_superuser(DEMO_USER, password=password)
        else:
            password = "(unchanged)"
        Membership.objects.create(organization=organization, user=user, role=Membership.Role.OWNER)
        _, raw_key = api_key_create(organization=organization, name="demo")
        self.stdout.write(
            self.style.SUCCESS(f"Demo organization '{DEMO_SLUG}' uses model {model}, detector {organization.detector}.")
        )
        missing = recognition_missing(organization)
        if missing:
            self.stderr.write(self.style.WARNING(f"WARNING: {missing}"))
        self.stdout.write(f"Admin: http://127.0.0.1:8000/admin/  user {DEMO_USER}  password {password}")
        self.stdout.write("API key (shown only this once):")
        self.stdout.write(raw_key)
