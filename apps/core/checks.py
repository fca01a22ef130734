from django.core.checks import Error, Tags, register
from django.db import connection


@register(Tags.database)
def pgvector_available(app_configs, **kwargs):
    """The gallery lives in pgvector columns: refuse a server without the extension."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone():
            return []
    return [
        Error(
            "The PostgreSQL server at DATABASE_URL does not have the pgvector extension.",
            hint="Install pgvector on that server (https://github.com/pgvector/pgvector#installation), "
            "or unset DATABASE_URL to use the embedded PostgreSQL that ships with pgvector.",
            id="core.E001",
        )
    ]
