"""The tenant context: which organization the current request or task acts for.

Inside a context the database connection runs as the role `faces_tenant`, which
PostgreSQL row-level security restricts to the rows of `app.organization_id`: a second
wall behind the application's own scoping. Outside any context the connection runs as
the role it logged in with — the platform path (migrations, management commands, the
platform superuser's admin, tasks that sweep all organizations). It is explicit: code
that acts for an organization enters `tenant_context(organization_id)`.
"""

import contextvars
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, connection

TENANT_ROLE = "faces_tenant"

_current: contextvars.ContextVar[int | None] = contextvars.ContextVar("organization_id", default=None)


def current_organization_id() -> int | None:
    return _current.get()


@contextmanager
def tenant_context(organization_id: int):
    outer = _current.get()
    token = _current.set(int(organization_id))
    try:
        _apply(int(organization_id))
    except (InterfaceError, OperationalError):
        # The connection is dead, or none can be opened (the database restarts). The
        # context is entered all the same: the next connection is given it by
        # reapply_on_new_connection, and the code inside meets the outage itself (a
        # task retries after a backoff). Raising here would leave the context set with
        # nothing to undo it.
        connection.close()
    try:
        yield
    finally:
        _current.reset(token)
        try:
            _apply(outer)
        except (InterfaceError, OperationalError):
            # The connection died inside the context (a terminated backend, a restarted
            # database). Closed, it cannot carry the role on; the next one is opened as
            # the login role and given the outer context by reapply_on_new_connection.
            # Raising here would turn the request's answer into a 500.
            connection.close()


def _apply(organization_id: int | None) -> None:
    if connection.connection is None and organization_id is None:
        return  # nothing to undo on a connection that was never opened
    with connection.cursor() as cursor:
        if organization_id is None:
            cursor.execute("RESET ROLE; SELECT set_config('app.organization_id', '', false)")
        else:
            cursor.execute(
                f"SET ROLE {TENANT_ROLE}; SELECT set_config('app.organization_id', %s, false)", [str(organization_id)]
            )


def reapply_on_new_connection(sender, connection, **kwargs) -> None:
    """A connection opened inside a context (the old one was closed) gets the context too."""
    organization_id = _current.get()
    if organization_id is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SET ROLE {TENANT_ROLE}; SELECT set_config('app.organization_id', %s, false)", [str(organization_id)]
            )


# --- Migrations -------------------------------------------------------------------------

CREATE_ROLE_SQL = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
        CREATE ROLE {TENANT_ROLE} NOLOGIN NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT {TENANT_ROLE} TO %I', current_user);
END $$;
GRANT USAGE ON SCHEMA public TO {TENANT_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {TENANT_ROLE};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {TENANT_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {TENANT_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {TENANT_ROLE};
"""


def enable_rls_sql(table: str, column: str = "organization_id") -> str:
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table} TO {TENANT_ROLE}
    USING ({column} = NULLIF(current_setting('app.organization_id', true), '')::bigint)
    WITH CHECK ({column} = NULLIF(current_setting('app.organization_id', true), '')::bigint);
DO $$ BEGIN EXECUTE format('CREATE POLICY platform_access ON {table} TO %I USING (true)', current_user); END $$;
"""


def disable_rls_sql(table: str) -> str:
    return f"""
DROP POLICY IF EXISTS tenant_isolation ON {table};
DROP POLICY IF EXISTS platform_access ON {table};
ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
"""
