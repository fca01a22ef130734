import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.organizations.models import Membership, Organization
from apps.organizations.services import api_key_create, organization_create
from apps.recognition.pipeline import catalog

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
        # Facenet is the design's default; where its weights could not be fetched, the
        # demo uses Dlib, whose weights ship in a package and work offline.
        model = settings.RECOGNITION_DEFAULT_MODEL
        if not catalog.model_ready(model, settings.DEEPFACE_HOME):
            model = next(
                (name for name in ("Dlib", *catalog.MODELS) if catalog.model_ready(name, settings.DEEPFACE_HOME)), model
            )
        organization = organization_create(slug=DEMO_SLUG, name="Demo organization", recognition_model=model)
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = user_model.objects.create_superuser(DEMO_USER, password=password)
        else:
            password = "(unchanged)"
        Membership.objects.create(organization=organization, user=user, role=Membership.Role.OWNER)
        _, raw_key = api_key_create(organization=organization, name="demo")
        self.stdout.write(self.style.SUCCESS(f"Demo organization '{DEMO_SLUG}' uses model {model}."))
        self.stdout.write(f"Admin: http://127.0.0.1:8000/admin/  user {DEMO_USER}  password {password}")
        self.stdout.write("API key (shown only this once):")
        self.stdout.write(raw_key)
