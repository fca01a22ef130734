import pytest

from apps.recognition.pipeline.match import Candidate, best_per_person, decide, similarity

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_similarity_is_one_half_at_the_threshold_and_falls_with_distance():
    assert similarity(0.07, 0.07) == pytest.approx(0.5)
    assert similarity(0.0, 0.07) == 1.0
    values = [similarity(d / 100, 0.07) for d in range(0, 50)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert all(0.0 <= v <= 1.0 for v in values)


def test_best_per_person_keeps_each_persons_nearest_face():
    neighbours = [(1, 0.3), (2, 0.1), (1, 0.05), (3, 0.2), (2, 0.4)]
    assert best_per_person(neighbours, 2) == [Candidate(1, 0.05), Candidate(2, 0.1)]


def test_a_face_beyond_the_threshold_is_a_stranger_not_the_closest_person():
    candidates = [Candidate(7, 0.08), Candidate(8, 0.3)]
    assert decide(candidates, threshold=0.07) is None
    assert decide(candidates, threshold=0.09) == Candidate(7, 0.08)
    assert decide([], threshold=0.5) is None


def test_a_face_too_close_to_two_people_is_nobody():
    threshold = 0.1
    assert decide([Candidate(1, 0.05), Candidate(2, 0.055)], threshold, margin=0.1) is None
    assert decide([Candidate(1, 0.05), Candidate(2, 0.07)], threshold, margin=0.1) == Candidate(1, 0.05)
    assert decide([Candidate(1, 0.05)], threshold, margin=0.1) == Candidate(1, 0.05)


def test_best_per_person_remembers_which_enrolled_face_was_nearest():
    neighbours = [(1, 0.3, 10), (1, 0.05, 11), (2, 0.1, 20)]
    assert best_per_person(neighbours, 3) == [Candidate(1, 0.05, 11), Candidate(2, 0.1, 20)]


def test_a_face_closer_to_a_correction_than_to_the_person_is_not_that_person():
    threshold = 0.1
    candidates = [Candidate(1, 0.05), Candidate(2, 0.09)]
    # A user said a face at distance 0.02 from this one is not person 1.
    assert decide(candidates, threshold, negatives={1: 0.02}) == Candidate(2, 0.09)
    assert decide(candidates, threshold, margin=0.1, negatives={1: 0.02, 2: 0.01}) is None
    # A counter-example farther away than the person's own photos changes nothing.
    assert decide(candidates, threshold, margin=0.1, negatives={1: 0.2}) == Candidate(1, 0.05)
