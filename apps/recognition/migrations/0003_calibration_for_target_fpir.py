from django.db import migrations, models


def drop_far_calibrations(apps, schema_editor):
    # Calibrations made for a pair false-accept rate mean nothing for a target FPIR;
    # the background calibration makes new ones as soon as the gallery changes.
    apps.get_model("recognition", "Calibration").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recognition", "0002_frame_finished_notify"),
    ]

    operations = [
        migrations.RunPython(drop_far_calibrations, migrations.RunPython.noop),
        migrations.RenameField("calibration", "target_far", "target_fpir"),
        migrations.RenameField("calibration", "far", "expected_fpir"),
        migrations.RenameField("calibration", "frr", "expected_fnir"),
        migrations.RemoveField("calibration", "genuine_pairs"),
        migrations.RemoveField("calibration", "applied"),
        migrations.AddField("calibration", "people", models.PositiveIntegerField(default=0), preserve_default=False),
        migrations.AddField("calibration", "photos", models.PositiveIntegerField(default=0), preserve_default=False),
        migrations.AddField(
            "calibration", "source", models.CharField(default="", max_length=32), preserve_default=False
        ),
        migrations.AlterField("calibration", "impostor_pairs", models.PositiveBigIntegerField()),
    ]
