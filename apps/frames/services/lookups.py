"""Synchronous operations (identify, verify, detect): the web process validates and
matches, a worker runs the model and answers through the result backend."""

import numpy as np
from django.conf import settings

from apps.core.errors import Conflict, NoFace, WorkerUnavailable
from apps.frames.services.frames import recognized_candidate
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


def _candidate_dicts(candidates: list[match.Candidate], threshold: float) -> list[dict]:
    names = dict(Person.objects.filter(pk__in=[c.person_id for c in candidates]).values_list("pk", "name"))
    return [
        {
            "person": {"id": c.person_id, "name": names.get(c.person_id, "")},
            "distance": c.distance,
            "similarity": match.similarity(c.distance, threshold),
        }
        for c in candidates
    ]


def identify(*, organization, data: bytes, top_k: int = 3) -> list[dict]:
    """1:K for every face in an image: the recognized person or null, and the top-k."""
    threshold = organization.threshold
    results = []
    for face in image_analyze_remote(organization=organization, data=data):
        candidates = search.gallery_candidates(
            organization_id=organization.pk,
            model_name=organization.recognition_model,
            embedding=np.asarray(face["embedding"], dtype=np.float32),
            limit=max(top_k, 2),  # the margin needs the runner-up even when top_k is 1
        )
        recognized = recognized_candidate(
            organization=organization, embedding=np.asarray(face["embedding"], dtype=np.float32), candidates=candidates
        )
        shown = _candidate_dicts(candidates[:top_k], threshold)
        nearest = candidates[0] if candidates else None
        results.append(
            {
                "box": face["box"],
                "quality": face["quality"],
                "person": next(
                    (c["person"] for c in shown if recognized and c["person"]["id"] == recognized.person_id), None
                ),
                "distance": nearest.distance if nearest else None,
                "similarity": match.similarity(nearest.distance, threshold) if nearest else None,
                "threshold": threshold,
                "candidates": shown,
            }
        )
    return results


def verify(*, organization, data: bytes, person) -> dict:
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
    return {
        "verified": distance <= threshold,
        "distance": distance,
        "similarity": match.similarity(distance, threshold),
        "threshold": threshold,
        "box": face["box"],
        "quality": face["quality"],
    }


def detect(*, organization, data: bytes) -> list[dict]:
    return [
        {"box": f["box"], "quality": f["quality"]} for f in image_analyze_remote(organization=organization, data=data)
    ]
