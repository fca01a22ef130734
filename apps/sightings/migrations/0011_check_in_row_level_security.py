"""Row-level security on the kiosk's check-ins (as apps/core/migrations/0003 does)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("sightings", "0010_check_ins"),
    ]

    operations = [migrations.RunSQL(enable_rls_sql("sightings_checkin"), disable_rls_sql("sightings_checkin"))]
