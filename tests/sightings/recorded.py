"""Sightings stored and grouped the way frame_process stores them, for tests whose
subject is what happens after recognition (visits, strangers, webhooks)."""

import numpy as np

from apps.recognition.models import Frame
from apps.sightings import services
from apps.sightings.models import Sighting


def record_sighting(
    organization, person, camera, at, *, similarity=0.9, quality=0.5, axis: int = 0, crop: str = ""
) -> Sighting:
    """A frame at `at` with one face of `person` (None: unknown). `axis` picks the
    face's embedding: unknown faces with the same axis are the same stranger. `crop`
    names an existing media file to show as the face."""
    return record_frame(organization, camera, at, [(person, similarity, quality, axis, crop)])[0]


def record_frame(organization, camera, at, faces: list[tuple]) -> list[Sighting]:
    """A frame at `at` with several faces, each (person, similarity, quality, axis, crop)."""
    frame = Frame.objects.create(
        organization=organization, camera=camera, captured_at=at, received_at=at, status=Frame.Status.DONE
    )
    sightings = [
        Sighting(
            organization=organization,
            frame=frame,
            camera=camera,
            seen_at=at,
            person=person,
            similarity=similarity,
            distance=0.01,
            threshold=0.07,
            model_name="Dlib",
            box_x=0,
            box_y=0,
            box_w=100,
            box_h=100,
            quality_score=quality,
            crop=crop,
            embedding=np.eye(128, dtype=np.float32)[axis],
        )
        for person, similarity, quality, axis, crop in faces
    ]
    services.sightings_record(organization=organization, sightings=sightings)
    return sightings
