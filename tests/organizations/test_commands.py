import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.organizations.models import ApiKey, Organization
from apps.organizations.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_organization_and_api_key_printed_alone_on_the_last_line():
    run("create_organization", "acme", "--name", "Acme", "--model", "Dlib")
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
