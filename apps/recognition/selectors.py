import numpy as np
from pgvector.django import CosineDistance

from apps.gallery.models import FaceEmbedding
from apps.recognition.pipeline import match

# Enrolled faces fetched per query; several may belong to the same person.
NEIGHBOURS_FETCHED = 20


def gallery_candidates(
    *, organization_id: int, model_name: str, embedding: np.ndarray, limit: int
) -> list[match.Candidate]:
    """The closest people in one organization's gallery, by cosine distance in pgvector."""
    neighbours = (
        FaceEmbedding.objects.filter(organization_id=organization_id, model_name=model_name)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("person_id", "distance")[:NEIGHBOURS_FETCHED]
    )
    return match.best_per_person(list(neighbours), limit)


def person_distance(*, person_id: int, model_name: str, embedding: np.ndarray) -> float:
    """Cosine distance from an embedding to the person's nearest enrolled face."""
    return float(
        FaceEmbedding.objects.filter(person_id=person_id, model_name=model_name)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("distance", flat=True)
        .first()
    )
