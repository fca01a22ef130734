from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.organizations.models import ApiKey, Organization
from apps.organizations.services import api_key_authenticate
from apps.recognition.pipeline import catalog, weights

pytestmark = pytest.mark.django_db


def run(*args, stderr=None) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=stderr or StringIO())
    return out.getvalue().strip().splitlines()


def test_create_organization_and_api_key_printed_alone_on_the_last_line():
    run("create_organization", "acme", "--name", "Acme", "--model", "Dlib", "--detector", "dlib")
    organization = Organization.objects.get(slug="acme")
    assert organization.recognition_model == "Dlib" and organization.detector == "dlib"
    key = run("create_api_key", "acme")[-1]
    assert " " not in key
    api_key = api_key_authenticate(key)
    assert api_key.organization == organization
    # Only a hash is stored: the secret part appears nowhere in the row.
    row = ApiKey.objects.get(pk=api_key.pk)
    assert key.split(".", 1)[1] not in (row.hashed_key, row.prefix)
    assert api_key_authenticate(key[:-1] + ("x" if key[-1] != "x" else "y")) is None


def test_commands_refuse_duplicates_and_unknown_organizations():
    run("create_organization", "acme")
    with pytest.raises(CommandError):
        run("create_organization", "acme")
    with pytest.raises(CommandError):
        run("create_api_key", "nobody")


def test_setup_demo_is_idempotent_and_shows_the_key_once():
    first = run("setup_demo")
    assert "uses model" in first[0]
    assert api_key_authenticate(first[-1]) is not None
    second = run("setup_demo")
    assert first[-1] not in "\n".join(second)
    assert Organization.objects.filter(slug="demo").count() == 1


def test_a_new_organization_gets_the_configured_defaults_and_is_told_which():
    lines = run("create_organization", "acme")
    organization = Organization.objects.get(slug="acme")
    assert (organization.recognition_model, organization.detector) == (
        settings.RECOGNITION_DEFAULT_MODEL,
        settings.RECOGNITION_DEFAULT_DETECTOR,
    )
    assert lines == [
        f"created organization acme (model {settings.RECOGNITION_DEFAULT_MODEL}, "
        f"detector {settings.RECOGNITION_DEFAULT_DETECTOR})"
    ]


def test_without_the_default_weights_the_first_ready_model_and_detector_are_chosen(tmp_path):
    # A machine where only Dlib's packaged weights could be provisioned.
    for file_name in weights.PACKAGED:
        weights.provision_file(file_name, tmp_path, allow_download=False)
    errors = StringIO()
    with override_settings(DEEPFACE_HOME=tmp_path, RECOGNITION_DEFAULT_MODEL="Facenet512"):
        lines = run("create_organization", "acme", stderr=errors)
    assert lines == ["created organization acme (model Dlib, detector dlib)"]
    assert errors.getvalue() == ""


def test_a_model_without_weights_is_created_with_a_warning_that_names_the_fix(tmp_path):
    errors = StringIO()
    with override_settings(DEEPFACE_HOME=tmp_path):
        run("create_organization", "acme", "--model", "Facenet512", stderr=errors)
    assert Organization.objects.get(slug="acme").recognition_model == "Facenet512"
    warning = errors.getvalue()
    assert "WARNING" in warning and "503 model_unavailable" in warning
    assert "python manage.py provision_models --model Facenet512" in warning
    assert catalog.model_spec("Facenet512").weight_file in warning
