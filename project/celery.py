import os
import threading

from celery import Celery
from celery.signals import celeryd_init, task_postrun, task_prerun, worker_ready

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


# A worker process runs one task after another, mostly frames of one organization: the
# last task's tenant context stays entered until a task needs another (an organization's
# or none, for a platform task), which saves the two database round trips of leaving and
# entering it again on every frame (README, "Speed, measured"). Per thread, as contexts are.
_entered = threading.local()


def leave_tenant_context() -> None:
    context = getattr(_entered, "context", None)
    if context is not None:
        _entered.context = _entered.organization_id = None
        context.__exit__(None, None, None)


@task_prerun.connect
def enter_tenant_context(task=None, kwargs=None, **_):
    drop_broken_connections()
    organization_id = (kwargs or {}).get("organization_id")
    if organization_id is not None and getattr(_entered, "organization_id", None) == int(organization_id):
        return
    leave_tenant_context()
    if organization_id is not None:
        from apps.core.tenancy import tenant_context

        context = tenant_context(organization_id)
        context.__enter__()
        _entered.context, _entered.organization_id = context, int(organization_id)


@task_postrun.connect
def drop_connections_after_task(**_):
    drop_broken_connections()


@task_postrun.connect
def count_task(task=None, state=None, **_):
    from apps.core.metrics import TASKS

    TASKS.labels(task=task.name, outcome=(state or "unknown").lower()).inc()


# --- The worker's metrics endpoint (WORKER_METRICS_PORT) ----------------------------------


@celeryd_init.connect
def prepare_metrics(**_):
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from project.metrics import MULTIPROCESS_DIR, clear_multiprocess_dir

    if settings.WORKER_METRICS_PORT:
        if not os.environ.get(MULTIPROCESS_DIR):
            # The tasks run in the pool's processes: without the shared files the
            # endpoint of the main process would report none of their work.
            raise ImproperlyConfigured(
                f"WORKER_METRICS_PORT needs {MULTIPROCESS_DIR}: a directory of this worker's own (wiped at start)"
            )
        clear_multiprocess_dir(keep_pid=os.getpid())


@worker_ready.connect
def serve_metrics(**_):
    from django.conf import settings
    from prometheus_client import start_http_server

    from project.metrics import registry

    if settings.WORKER_METRICS_PORT:
        start_http_server(
            settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDRESS, registry=registry(with_queues=False)
        )
