"""1:K search moves from HNSW to an IVFFlat index built by `manage.py search_index`
(apps/gallery/search.py says why). IVFFlat learns from the rows present, so it
is not created here, on what may be an empty table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gallery", "0003_faceembedding_hnsw")]

    operations = [
        migrations.RunSQL(
            "DROP INDEX IF EXISTS gallery_faceembedding_hnsw_128",
            "CREATE INDEX gallery_faceembedding_hnsw_128 ON gallery_faceembedding "
            "USING hnsw ((embedding::vector(128)) vector_cosine_ops) WHERE dimensions = 128",
        ),
    ]
