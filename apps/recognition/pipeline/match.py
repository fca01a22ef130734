"""Open-set decisions: a face is someone only when it is close enough; otherwise
it is a stranger, never "the closest known person"."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    person_id: int
    distance: float  # cosine distance to the person's nearest enrolled face
    face_id: int | None = None  # that enrolled face (photo), when known


def similarity(distance: float, threshold: float) -> float:
    """In [0, 1]; 1 at distance 0, exactly 0.5 at the threshold, falling as distance grows."""
    if threshold <= 0:
        raise ValueError("threshold must be positive")
    return 1.0 / (1.0 + (max(distance, 0.0) / threshold) ** 4)


def best_per_person(neighbours: list[tuple], limit: int) -> list[Candidate]:
    """Nearest enrolled faces (person_id, distance[, face_id]), any order -> the `limit`
    closest people, each with the distance to (and the id of) their closest face."""
    best: dict[int, Candidate] = {}
    for person_id, distance, *face in neighbours:
        if person_id not in best or distance < best[person_id].distance:
            best[person_id] = Candidate(person_id, distance, face[0] if face else None)
    return sorted(best.values(), key=lambda candidate: candidate.distance)[:limit]


def decide(
    candidates: list[Candidate], threshold: float, margin: float = 0.0, negatives: dict[int, float] | None = None
) -> Candidate | None:
    """The recognized person, or None for a stranger.

    Recognized means within the threshold AND clearly closer to the best person than
    to the second best: the gap must be at least `margin` x threshold, so that a face
    halfway between two enrolled people is nobody rather than a coin toss.

    `negatives` maps a person to the distance from this face to the nearest face that
    a user said is NOT that person (a correction). A face closer to such a counter-example
    than to the person's own enrolled faces is not that person: the person drops out
    before the rule above is applied.
    """
    if negatives:
        candidates = [c for c in candidates if negatives.get(c.person_id, float("inf")) >= c.distance]
    if not candidates or candidates[0].distance > threshold:
        return None
    if len(candidates) > 1 and candidates[1].distance - candidates[0].distance < margin * threshold:
        return None
    return candidates[0]
