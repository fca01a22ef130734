"""PostgreSQL row-level security: the second wall behind the application's scoping."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from apps.core.models import AuditEvent, TenantOwned
from apps.core.tenancy import current_organization_id, tenant_context
from apps.gallery.models import FaceEmbedding, FaceImage, Person
from apps.organizations.models import ApiKey, Camera, Membership, Organization
from apps.recognition.models import Frame
from apps.sightings.models import Sighting
from tests.support.database import database_closed
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db


def tenant_models():
    return [m for m in apps.get_models() if issubclass(m, TenantOwned)]


def test_every_tenant_owned_table_has_row_level_security():
    with connection.cursor() as cursor:
        for model in tenant_models() + [Organization]:
            table = model._meta.db_table
            cursor.execute("SELECT relrowsecurity FROM pg_class WHERE relname = %s", [table])
            assert cursor.fetchone() == (True,), f"{table} has no row-level security"
            cursor.execute("SELECT policyname FROM pg_policies WHERE tablename = %s ORDER BY 1", [table])
            assert [row[0] for row in cursor.fetchall()] == ["platform_access", "tenant_isolation"], table


def test_an_unscoped_query_in_a_context_sees_only_that_organization():
    a = make_tenant("rls-a", "Ann", "door-a")
    b = make_tenant("rls-b", "Bob", "door-b")
    models = [Person, FaceImage, FaceEmbedding, Camera, ApiKey, Membership, Frame, Sighting, AuditEvent]
    with tenant_context(a.organization.pk):
        assert current_organization_id() == a.organization.pk
        for model in models:
            # Deliberately unscoped: no .filter(organization=...) anywhere.
            organizations = set(model.objects.values_list("organization_id", flat=True))
            assert organizations <= {a.organization.pk}, model
            assert model.objects.filter(organization=b.organization).count() == 0, model
        assert list(Organization.objects.values_list("slug", flat=True)) == ["rls-a"]
        assert Person.objects.filter(pk=b.person.pk).first() is None
        # Writing into another organization is refused by the database itself.
        with pytest.raises(DatabaseError), transaction.atomic():
            Person.objects.create(organization=b.organization, name="intruder")
        assert Person.objects.filter(pk=b.person.pk).update(name="renamed") == 0
    # The platform path (no context) sees both; nothing of B was changed.
    assert current_organization_id() is None
    assert set(Person.objects.values_list("name", flat=True)) >= {"Ann", "Bob"}
    assert Person.objects.get(pk=b.person.pk).name == "Bob"


def test_contexts_nest_and_restore():
    a = make_tenant("nest-a", "Ann", "door-a")
    b = make_tenant("nest-b", "Bob", "door-b")
    with tenant_context(a.organization.pk):
        with tenant_context(b.organization.pk):
            assert list(Person.objects.values_list("name", flat=True)) == ["Bob"]
        assert list(Person.objects.values_list("name", flat=True)) == ["Ann"]
    assert Person.objects.count() >= 2


@pytest.mark.django_db(transaction=True)
def test_a_context_entered_while_the_database_is_away_holds_once_it_is_back_and_ends_cleanly():
    """A task's context is entered as the database restarts (the worker's connection is
    dead, no new one is let in): entering does not raise, the connection opened once
    the database is back is given the context, and leaving it leaves nothing set."""
    a = make_tenant("away-a", "Ann", "door-a")
    make_tenant("away-b", "Bob", "door-b")
    with database_closed():
        context = tenant_context(a.organization.pk)
        context.__enter__()
    try:
        assert current_organization_id() == a.organization.pk
        assert list(Person.objects.values_list("name", flat=True)) == ["Ann"]  # a new connection, in the context
    finally:
        context.__exit__(None, None, None)
    assert current_organization_id() is None
    assert sorted(Person.objects.values_list("name", flat=True)) == ["Ann", "Bob"]


@pytest.mark.django_db(transaction=True)  # the task signals drop connections, as around a task
def test_a_worker_keeps_one_organizations_context_across_its_tasks_until_another_needs_its_own():
    """project/celery.py: consecutive tasks of one organization reuse its context (no
    database round trip between frames); a task of another organization, or a platform
    task, gets its own, and the platform one runs as the login role again."""
    from django.test.utils import CaptureQueriesContext

    from project.celery import enter_tenant_context, leave_tenant_context

    a = make_tenant("keep-a", "Ann", "door-a")
    b = make_tenant("keep-b", "Bob", "door-b")
    try:
        enter_tenant_context(kwargs={"organization_id": a.organization.pk})
        assert list(Person.objects.values_list("name", flat=True)) == ["Ann"]
        with CaptureQueriesContext(connection) as queries:
            enter_tenant_context(kwargs={"organization_id": a.organization.pk})
        assert len(queries) == 0
        assert current_organization_id() == a.organization.pk
        enter_tenant_context(kwargs={"organization_id": b.organization.pk})
        assert list(Person.objects.values_list("name", flat=True)) == ["Bob"]
        enter_tenant_context(kwargs={})  # a platform task
        assert current_organization_id() is None
        assert {"Ann", "Bob"} <= set(Person.objects.values_list("name", flat=True))
    finally:
        leave_tenant_context()
