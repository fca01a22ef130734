"""What /healthz reports: each dependency the service needs, checked for real."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.core.errors import OUTAGE_RETRY_AFTER_SECONDS
from apps.recognition.pipeline import catalog


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        return {"ok": row is not None, "pgvector": row[0] if row else None}
    except Exception as error:  # reported, not raised: health must answer
        return {"ok": False, "error": str(error)}


def check_broker_and_workers() -> tuple[dict, dict]:
    from project.celery import app

    # Reported, not raised: health must answer. The ping is tried twice: the first
    # may take a pooled connection that Redis closed when it restarted, which fails
    # once and is dropped, and a probe must not report an outage that is over.
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            lost = conn.connection_errors
        try:
            replies = app.control.ping(timeout=1.0)
        except lost:
            replies = app.control.ping(timeout=1.0)
    except Exception as error:
        return {"ok": False, "error": str(error)}, {"ok": False, "seen": []}
    seen = sorted(name for reply in replies for name in reply)
    return {"ok": True}, {"ok": bool(seen), "seen": seen}


def check_models() -> dict:
    return {
        name: {"ready": catalog.model_ready(name, settings.DEEPFACE_HOME), "dimensions": spec.dimensions}
        for name, spec in catalog.MODELS.items()
    }


def health() -> dict:
    database = check_database()
    broker, workers = check_broker_and_workers()
    models = check_models()
    return {
        "ok": database["ok"] and broker["ok"],
        "database": database,
        "broker": broker,
        "workers": workers,
        "models": models,
    }


@require_GET
def healthz(request):
    report = health()
    if report["ok"]:
        return JsonResponse(report)
    return JsonResponse(report, status=503, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})
