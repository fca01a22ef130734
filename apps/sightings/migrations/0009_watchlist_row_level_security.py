"""Row-level security on the watchlist (as apps/core/migrations/0003 does)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("sightings", "0008_watchlist"),
    ]

    operations = [
        migrations.RunSQL(enable_rls_sql("sightings_watchlistentry"), disable_rls_sql("sightings_watchlistentry"))
    ]
