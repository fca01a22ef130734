from django.db import migrations

# A frame that becomes done or failed is announced on the `frame_done` channel (its id as
# the payload), at the commit that finishes it: requests waiting for it (POST
# /frames/?wait=) listen instead of asking the database again and again
# (services.frame_wait).
NOTIFY = """
CREATE FUNCTION recognition_frame_finished_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('frame_done', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER recognition_frame_finished AFTER UPDATE OF status ON recognition_frame
FOR EACH ROW WHEN (NEW.status IN ('done', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION recognition_frame_finished_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS recognition_frame_finished ON recognition_frame;
DROP FUNCTION IF EXISTS recognition_frame_finished_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("recognition", "0001_initial"),
    ]

    operations = [migrations.RunSQL(NOTIFY, reverse_sql=DROP)]
