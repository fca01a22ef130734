from dataclasses import dataclass

import numpy as np
from django.db.models import Q, QuerySet
from pgvector.django import CosineDistance

from apps.gallery.models import FaceEmbedding, Person


@dataclass(frozen=True)
class NearestFace:
    face_image_id: int
    person_id: int
    person_name: str
    distance: float


def nearest_own_and_other(
    *, organization_id: int, model_name: str, person_id: int, exclude_face_image_id: int, embedding: np.ndarray
) -> tuple[NearestFace | None, NearestFace | None]:
    """The nearest enrolled face of the same person, and of anyone else."""
    base = (
        FaceEmbedding.objects.filter(organization_id=organization_id, model_name=model_name)
        .exclude(face_image_id=exclude_face_image_id)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("face_image_id", "person_id", "person__name", "distance")
    )
    own = base.filter(person_id=person_id).first()
    other = base.exclude(person_id=person_id).first()
    return (NearestFace(*own) if own else None), (NearestFace(*other) if other else None)


def people_search(*, organization, text: str = "") -> QuerySet[Person]:
    people = Person.objects.filter(organization=organization)
    if text:
        people = people.filter(Q(name__icontains=text) | Q(external_id__icontains=text))
    return people
