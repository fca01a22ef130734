import numpy as np
from django.conf import settings
from django.db import connection, transaction
from pgvector.django import CosineDistance

from apps.gallery.models import FaceEmbedding
from apps.recognition.pipeline import match

# Enrolled faces fetched per query; several may belong to the same person.
NEIGHBOURS_FETCHED = 20


def gallery_candidates(
    *, organization_id: int, model_name: str, embedding: np.ndarray, limit: int
) -> list[match.Candidate]:
    """The closest people in one organization's gallery, by cosine distance in pgvector.

    For 128-d models the query uses the HNSW index (apps/gallery/migrations/0003) with
    iterative scans, so that the organization filter cannot starve it of rows;
    RECOGNITION_HNSW_EF_SEARCH trades speed for recall (see the benchmark)."""
    vector = np.asarray(embedding, dtype=np.float32)
    if len(vector) != 128:
        neighbours = (
            FaceEmbedding.objects.filter(organization_id=organization_id, model_name=model_name)
            .annotate(distance=CosineDistance("embedding", vector))
            .order_by("distance")
            .values_list("person_id", "distance")[:NEIGHBOURS_FETCHED]
        )
        return match.best_per_person(list(neighbours), limit)
    literal = "[" + ",".join(f"{x:.8g}" for x in vector) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(settings.RECOGNITION_HNSW_EF_SEARCH)])
        cursor.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        cursor.execute(
            "SELECT person_id, (embedding::vector(128)) <=> %s::vector(128) AS distance "
            "FROM gallery_faceembedding "
            "WHERE organization_id = %s AND model_name = %s AND dimensions = 128 "
            "ORDER BY (embedding::vector(128)) <=> %s::vector(128) LIMIT %s",
            [literal, organization_id, model_name, literal, NEIGHBOURS_FETCHED],
        )
        neighbours = cursor.fetchall()
    # relaxed_order may return a few rows slightly out of order: best_per_person sorts.
    return match.best_per_person(neighbours, limit)


def person_distance(*, person_id: int, model_name: str, embedding: np.ndarray) -> float:
    """Cosine distance from an embedding to the person's nearest enrolled face."""
    return float(
        FaceEmbedding.objects.filter(person_id=person_id, model_name=model_name)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("distance", flat=True)
        .first()
    )
