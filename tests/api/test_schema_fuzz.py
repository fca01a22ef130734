"""schemathesis against /api/schema/, in process, with a bounded number of examples per
operation: no input may reach a 5xx, and every answer must match the schema."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture
def api_schema(db):
    # Requests run inside the test's transaction; the WSGI handler would close the
    # connection after each one (Django's test client unhooks this the same way).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_no_input_reaches_a_server_error(api_schema, org_a):
    _, raw_key, _ = org_a
    headers = {"Authorization": f"Api-Key {raw_key}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        # No worker runs here: keep waits short so that a lucky valid image cannot stall the run.
        with override_settings(API_MAX_WAIT_SECONDS=0.2, API_SYNC_TIMEOUT_SECONDS=0.5, API_RATE_PER_KEY="100000/min"):
            run()
