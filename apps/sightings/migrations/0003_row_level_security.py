"""Row-level security on the tables of visits, stranger profiles and corrections
(as apps/core/migrations/0003_row_level_security.py does for the first tables)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql

TENANT_TABLES = ["sightings_visit", "sightings_strangerprofile", "sightings_correction"]


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("sightings", "0002_visits_strangers_corrections"),
    ]

    operations = [migrations.RunSQL(enable_rls_sql(table), disable_rls_sql(table)) for table in TENANT_TABLES]
