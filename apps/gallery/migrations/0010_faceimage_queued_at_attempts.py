from django.db import migrations, models

# Photos pending before this migration count as queued when they were uploaded, so the
# stale-photo sweep picks up those a lost message or a dead worker left behind.
QUEUED_AT_FROM_CREATED_AT = "UPDATE gallery_faceimage SET queued_at = created_at WHERE status = 'pending'"


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0009_groups_row_level_security"),
    ]

    operations = [
        migrations.AddField(
            model_name="faceimage",
            name="attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="faceimage",
            name="queued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(QUEUED_AT_FROM_CREATED_AT, reverse_sql=migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name="faceimage",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["queued_at"], name="gallery_faceimage_pending"
            ),
        ),
    ]
