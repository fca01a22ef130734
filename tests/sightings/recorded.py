"""Sightings stored and grouped the way frame_process stores them, for tests whose
subject is what happens after recognition (visits, strangers, webhooks)."""

import numpy as np

from apps.sightings import services
from apps.sightings.models import Sighting
from tests.factories import FrameFactory, SightingFactory


def record_sighting(
    organization, person, camera, at, *, similarity=0.9, quality=0.5, axis: int = 0, crop: str = ""
) -> Sighting:
    """A frame at `at` with one face of `person` (None: unknown). `axis` picks the
    face's embedding: unknown faces with the same axis are the same stranger. `crop`
    names an existing media file to show as the face."""
    return record_frame(organization, camera, at, [(person, similarity, quality, axis, crop)])[0]


def record_frame(organization, camera, at, faces: list[tuple]) -> list[Sighting]:
    """A frame at `at` with several faces, each (person, similarity, quality, axis, crop)."""
    frame = FrameFactory(organization=organization, camera=camera, captured_at=at)
    sightings = [
        SightingFactory.build(
            organization=organization,
            frame=frame,
            person=person,
            similarity=similarity,
            quality_score=quality,
            crop=crop,
            embedding=np.eye(128, dtype=np.float32)[axis],
        )
        for person, similarity, quality, axis, crop in faces
    ]
    services.sightings_record(organization=organization, sightings=sightings)
    return sightings
