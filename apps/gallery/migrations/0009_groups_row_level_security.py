"""Row-level security on the group tables (as apps/core/migrations/0003 does)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("gallery", "0008_groups"),
    ]

    operations = [
        migrations.RunSQL(enable_rls_sql(table), disable_rls_sql(table))
        for table in ("gallery_group", "gallery_groupmember")
    ]
