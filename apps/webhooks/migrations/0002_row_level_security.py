"""Row-level security on the webhook tables (as apps/core/migrations/0003 does)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql

TENANT_TABLES = ["webhooks_webhooksubscription", "webhooks_webhookdelivery"]


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunSQL(enable_rls_sql(table), disable_rls_sql(table)) for table in TENANT_TABLES]
