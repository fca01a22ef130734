"""The database's own faults, made for real from a connection of the test's own."""

from contextlib import contextmanager

import psycopg2
from django.db import connection


@contextmanager
def database_admin(database: str | None = None):
    """A connection of the test's own, outside Django's: it outlives the faults it makes."""
    admin = psycopg2.connect(**{**connection.get_connection_params(), **({"dbname": database} if database else {})})
    admin.autocommit = True
    try:
        yield admin.cursor()
    finally:
        admin.close()


def terminate_the_others(cursor) -> int:
    """Every other connection to this database, the live server's included, as a
    database restart or a network fault would drop them."""
    cursor.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [connection.settings_dict["NAME"]],
    )
    terminated = cursor.fetchone()[0]
    connection.close()  # the test's own Django connection was among them
    return terminated


@contextmanager
def database_closed():
    """No connection to the test database is let in, and every one open is dropped
    (the live server's, the worker's, the test's own), as while it restarts."""
    with database_admin("postgres") as cursor:  # a database may only be closed from another
        name = connection.settings_dict["NAME"]
        cursor.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            terminate_the_others(cursor)
            yield
        finally:
            cursor.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
