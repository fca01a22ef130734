"""HNSW index for 1:K search. The embedding column has no fixed dimension (models
differ), so the index is on the 128-d cast, for the 128-d models (Dlib, Facenet); a
model of another size adds its own partial index the same way."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gallery", "0002_galleryimport")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX gallery_faceembedding_hnsw_128 ON gallery_faceembedding "
            "USING hnsw ((embedding::vector(128)) vector_cosine_ops) WHERE dimensions = 128",
            "DROP INDEX gallery_faceembedding_hnsw_128",
        ),
    ]
