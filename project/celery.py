import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A task given organization_id= runs in that organization's tenant context (row-level
# security); one without it is a platform task (a sweep over all organizations).
def drop_broken_connections() -> None:
    """What Django does around every web request: a connection that an error left
    unusable, or older than CONN_MAX_AGE, is closed (the next query opens a new one).
    Celery's own Django fixup would close every connection around every task, a new
    PostgreSQL connection per frame; CELERY_DB_REUSE_MAX in settings turns that off."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()


@task_prerun.connect
def enter_tenant_context(task=None, kwargs=None, **_):
    drop_broken_connections()
    organization_id = (kwargs or {}).get("organization_id")
    if organization_id is not None:
        from apps.core.tenancy import tenant_context

        context = tenant_context(organization_id)
        context.__enter__()
        task.request.tenant_context = context


@task_postrun.connect
def leave_tenant_context(task=None, **_):
    context = getattr(task.request, "tenant_context", None)
    if context is not None:
        context.__exit__(None, None, None)
        task.request.tenant_context = None
    drop_broken_connections()
