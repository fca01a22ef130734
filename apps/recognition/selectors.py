import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from pgvector.django import CosineDistance

from apps.gallery.models import FaceEmbedding
from apps.recognition.pipeline import match

# Enrolled faces fetched per query; several may belong to the same person.
NEIGHBOURS_FETCHED = 20


def gallery_size(*, organization_id: int, model_name: str) -> int:
    """How many enrolled faces the organization has for a model; cached for a minute
    (it only chooses the search plan, so a slightly old count does no harm)."""
    return cache.get_or_set(
        f"gallery-size:{organization_id}:{model_name}",
        lambda: FaceEmbedding.objects.filter(organization_id=organization_id, model_name=model_name).count(),
        timeout=60,
    )


def gallery_candidates(
    *, organization_id: int, model_name: str, embedding: np.ndarray, limit: int
) -> list[match.Candidate]:
    """The closest people in one organization's gallery, by cosine distance in pgvector.

    A gallery of up to RECOGNITION_EXACT_SEARCH_MAX_ROWS faces is searched exactly: its
    rows come from the organization index and every distance is computed (a few ms,
    recall 1). A larger one uses the HNSW index (apps/gallery/migrations/0003) with
    iterative scans, so that the organization filter cannot starve it of rows;
    RECOGNITION_HNSW_EF_SEARCH trades speed for recall. The benchmark measures both."""
    vector = np.asarray(embedding, dtype=np.float32)
    literal = "[" + ",".join(f"{x:.8g}" for x in vector) + "]"
    exact = len(vector) != 128 or (
        gallery_size(organization_id=organization_id, model_name=model_name)
        <= settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS
    )
    column = "embedding" if exact else "(embedding::vector(128))"
    cast = "vector" if exact else "vector(128)"
    with transaction.atomic(), connection.cursor() as cursor:
        if exact:
            # No plain index scans: the HNSW index cannot be chosen, the organization's
            # btree still can (as a bitmap scan).
            cursor.execute("SELECT set_config('enable_indexscan', 'off', true)")
        else:
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                [str(settings.RECOGNITION_HNSW_EF_SEARCH)],
            )
        cursor.execute(
            f"SELECT person_id, {column} <=> %s::{cast} AS distance, face_image_id FROM gallery_faceembedding "
            f"WHERE organization_id = %s AND model_name = %s AND dimensions = %s "
            f"ORDER BY {column} <=> %s::{cast} LIMIT %s",
            [literal, organization_id, model_name, len(vector), literal, NEIGHBOURS_FETCHED],
        )
        neighbours = cursor.fetchall()
    # relaxed_order may return a few rows slightly out of order: best_per_person sorts.
    return match.best_per_person(neighbours, limit)


def negative_distances(
    *, organization_id: int, model_name: str, embedding: np.ndarray, person_ids: list[int]
) -> dict[int, float]:
    """For each of these people, the distance from the embedding to the nearest face
    that a user corrected away from them (apps.sightings Correction): the negative
    examples of match.decide. Corrections are few, so this is an exact scan."""
    if not person_ids:
        return {}
    vector = np.asarray(embedding, dtype=np.float32)
    literal = "[" + ",".join(f"{x:.8g}" for x in vector) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.from_person_id, min(s.embedding <=> %s::vector) FROM sightings_correction c "
            "JOIN sightings_sighting s ON s.id = c.sighting_id "
            "WHERE c.organization_id = %s AND c.from_person_id = ANY(%s) AND s.model_name = %s "
            "AND vector_dims(s.embedding) = %s GROUP BY c.from_person_id",
            [literal, organization_id, list(person_ids), model_name, len(vector)],
        )
        return {person_id: float(distance) for person_id, distance in cursor.fetchall()}


def person_distance(*, person_id: int, model_name: str, embedding: np.ndarray) -> float:
    """Cosine distance from an embedding to the person's nearest enrolled face."""
    return float(
        FaceEmbedding.objects.filter(person_id=person_id, model_name=model_name)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("distance", flat=True)
        .first()
    )
