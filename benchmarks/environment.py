"""The service as the benchmarks run it: a database of their own, Django's production
settings. Imports no Django at module level: it sets Django up."""

import os
import secrets
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def setup_django(out: Path, database: str, environment: dict[str, str]) -> dict[str, str]:
    """Set Django up on `database` of the embedded server (or BENCH_DATABASE_URL), emptied,
    with `environment` over the service's settings; returns the environment set, for
    the processes a benchmark starts (web server, worker)."""
    sys.path.insert(0, str(REPO))
    from project import embedded

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        if os.environ.get("DATABASE_URL"):
            sys.exit("DATABASE_URL is set: give the benchmark its own database with BENCH_DATABASE_URL.")
        url = embedded.ensure_postgres(database=database)
    embedded.ensure_services()  # the broker, unless CELERY_BROKER_URL names one
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
    settings = {
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(out / "media"),
        # The service as deployed: Django's debug mode keeps every query's SQL and times it.
        "DJANGO_DEBUG": "false",
        # Cameras of one organization, far more than a key's share of requests.
        "API_RATE_PER_KEY": "1000000/min",
        "API_RATE_PER_ORGANIZATION": "1000000/min",
        **environment,
    }
    os.environ.update(settings)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    # Each run starts from an empty benchmark database (its rows would skew the next).
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE organizations_organization RESTART IDENTITY CASCADE")
    return settings
