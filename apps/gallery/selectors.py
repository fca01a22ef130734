from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from pgvector.django import CosineDistance

from apps.gallery.models import Consent, FaceEmbedding, FaceImage, Person


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


def with_enrolled_photos(people: QuerySet[Person]) -> QuerySet[Person]:
    """Each person annotated with `enrolled_photos`, the photos that passed enrollment."""
    return people.annotate(
        enrolled_photos=Count("face_images", filter=Q(face_images__status=FaceImage.Status.ENROLLED), distinct=True)
    )


def enrolled_photos(person: Person) -> int:
    annotated = getattr(person, "enrolled_photos", None)
    if annotated is not None:
        return annotated
    return person.face_images.filter(status=FaceImage.Status.ENROLLED).count()


def enrollment_strength(count: int) -> str:
    """none (not recognizable yet), weak (fewer than RECOGNITION_RECOMMENDED_PHOTOS good
    photos: on lfw-dev, one photo misses several times more of a person's new photos
    than three at the same share of strangers accepted; see the README), or strong."""
    if count == 0:
        return "none"
    return "weak" if count < settings.RECOGNITION_RECOMMENDED_PHOTOS else "strong"


def people_search(*, organization, text: str = "") -> QuerySet[Person]:
    people = with_consent_state(with_enrolled_photos(Person.objects.filter(organization=organization)))
    if text:
        people = people.filter(Q(name__icontains=text) | Q(external_id__icontains=text))
    return people


def with_consent_state(people: QuerySet[Person]) -> QuerySet[Person]:
    """Each person annotated with whether a consent is in force and whether any was
    recorded: consent_state reads them instead of a query per person."""
    consents = Consent.objects.filter(person=OuterRef("pk"))
    return people.annotate(
        consent_in_force=Exists(consents.filter(withdrawn_at__isnull=True)), consent_recorded=Exists(consents)
    )


def consent_state(person: Person) -> str:
    """given (a consent in force), withdrawn (only withdrawn ones) or none."""
    in_force = getattr(person, "consent_in_force", None)
    if in_force is None:
        in_force = person.consents.filter(withdrawn_at__isnull=True).exists()
        recorded = in_force or person.consents.exists()
    else:
        recorded = person.consent_recorded
    if in_force:
        return "given"
    return "withdrawn" if recorded else "none"
