"""Row-level security on the model-change table (as apps/core/migrations/0003 does)."""

from django.db import migrations

from apps.core.tenancy import disable_rls_sql, enable_rls_sql


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_row_level_security"),
        ("gallery", "0005_galleryreembed"),
    ]

    operations = [
        migrations.RunSQL(enable_rls_sql("gallery_galleryreembed"), disable_rls_sql("gallery_galleryreembed"))
    ]
