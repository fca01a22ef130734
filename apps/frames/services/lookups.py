"""Synchronous operations (identify, verify, detect): the web process validates and
matches, a worker runs the model and answers through the result backend."""

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from apps.core.errors import Conflict, NoFace, WorkerUnavailable
from apps.frames.services.frames import candidate_rows, recognized_candidate
from apps.frames.tasks import image_analyze_task
from apps.gallery import search
from apps.gallery.models import FaceEmbedding, Person
from apps.recognition.analyzers import analyzer_by_name, image_decode, require_organization_model
from apps.recognition.pipeline import match


def image_analyze(*, model_name: str, detector: str, data: bytes) -> list[dict]:
    """In a worker: every face of an image with its box, quality and embedding."""
    analyzer = analyzer_by_name(model_name, detector)
    image = image_decode(data)
    return [
        {"box": a.face.box.as_dict(), "quality": a.quality.as_dict(), "embedding": a.embedding.tolist()}
        for a in analyzer.analyze(image, min_face_px=settings.RECOGNITION_MIN_FACE_PX)
    ]


def image_analyze_remote(*, organization, data: bytes) -> list[dict]:
    """Validate here, run the model on a worker, wait for the answer."""
    import base64

    from celery.exceptions import TimeoutError as CeleryTimeout

    require_organization_model(organization)
    image_decode(data)
    pending = image_analyze_task.delay(
        organization.recognition_model, organization.detector, base64.b64encode(data).decode()
    )
    try:
        result = pending.get(timeout=settings.API_SYNC_TIMEOUT_SECONDS, propagate=True)
    except CeleryTimeout:
        pending.revoke()
        raise WorkerUnavailable(
            f"No recognition worker answered within {settings.API_SYNC_TIMEOUT_SECONDS:g} s; is a worker running?"
        ) from None
    finally:
        pending.forget()
    return result


@dataclass(frozen=True)
class FaceMatch:
    """One face of an image matched 1:K without storing anything (a stored one is a Sighting)."""

    box: dict
    quality: dict
    person: dict | None
    distance: float | None
    similarity: float | None
    threshold: float
    candidates: list[dict]


@dataclass(frozen=True)
class Verification:
    verified: bool
    distance: float
    similarity: float
    threshold: float
    box: dict
    quality: dict


def identify(*, organization, data: bytes, top_k: int = 3) -> list[FaceMatch]:
    """1:K for every face in an image: the recognized person or null, and the top-k."""
    threshold = organization.threshold
    faces = image_analyze_remote(organization=organization, data=data)
    matched = []
    for face in faces:
        embedding = np.asarray(face["embedding"], dtype=np.float32)
        candidates = search.gallery_candidates(
            organization_id=organization.pk,
            model_name=organization.recognition_model,
            embedding=embedding,
            limit=max(top_k, 2),  # the margin needs the runner-up even when top_k is 1
        )
        recognized = recognized_candidate(organization=organization, embedding=embedding, candidates=candidates)
        matched.append((face, recognized, candidates))
    person_ids = {c.person_id for _, _, candidates in matched for c in candidates[:top_k]}
    names = dict(Person.objects.filter(pk__in=person_ids).values_list("pk", "name"))
    results = []
    for face, recognized, candidates in matched:
        nearest = candidates[0] if candidates else None
        results.append(
            FaceMatch(
                box=face["box"],
                quality=face["quality"],
                person={"id": recognized.person_id, "name": names.get(recognized.person_id, "")}
                if recognized
                else None,
                distance=nearest.distance if nearest else None,
                similarity=match.similarity(nearest.distance, threshold) if nearest else None,
                threshold=threshold,
                candidates=candidate_rows(candidates[:top_k], threshold=threshold, names=names),
            )
        )
    return results


def verify(*, organization, data: bytes, person) -> Verification:
    """1:1: is the largest face in the image this person?"""
    if not FaceEmbedding.objects.filter(person=person, model_name=organization.recognition_model).exists():
        raise Conflict(
            "This person has no enrolled photo for the organization's model.",
            code="person_not_enrolled",
            field="person",
        )
    faces = image_analyze_remote(organization=organization, data=data)
    if not faces:
        raise NoFace("No face was found in the image.", field="image")
    face = max(faces, key=lambda f: f["box"]["w"] * f["box"]["h"])
    distance = search.person_distance(
        person_id=person.pk, model_name=organization.recognition_model, embedding=np.asarray(face["embedding"])
    )
    threshold = organization.threshold
    return Verification(
        verified=distance <= threshold,
        distance=distance,
        similarity=match.similarity(distance, threshold),
        threshold=threshold,
        box=face["box"],
        quality=face["quality"],
    )


def detect(*, organization, data: bytes) -> list[dict]:
    """Every face's box and quality (and embedding, which the answer leaves out)."""
    return image_analyze_remote(organization=organization, data=data)
