from django.db import migrations, models

# Existing visits count their faces once; from then on visit_add keeps the count.
COUNT_SIGHTINGS = """
UPDATE sightings_visit AS v SET sightings_count = counted.n
FROM (SELECT visit_id, count(*) AS n FROM sightings_sighting WHERE visit_id IS NOT NULL GROUP BY visit_id) AS counted
WHERE counted.visit_id = v.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("sightings", "0005_visit_closed"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="sightings_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunSQL(COUNT_SIGHTINGS, reverse_sql=migrations.RunSQL.noop),
    ]
