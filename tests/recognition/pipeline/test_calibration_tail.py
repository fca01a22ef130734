"""The gallery-size calibration on distance sets whose answers are known by hand."""

import numpy as np
import pytest

from apps.recognition.pipeline import calibration
from apps.recognition.pipeline.calibration import ImpostorTail, ScoreReference

# A made-up model whose impostor distances fall 0.01 per decade of probability (0.005
# lower against templates of three photos).
REFERENCE = ScoreReference(
    impostor={
        1: ((1e-6, 0.05), (1e-5, 0.06), (1e-4, 0.07), (1e-3, 0.08), (1e-2, 0.09), (1e-1, 0.10)),
        3: ((1e-6, 0.045), (1e-5, 0.055), (1e-4, 0.065), (1e-3, 0.075), (1e-2, 0.085), (1e-1, 0.095)),
    },
    misses={1: ((0.05, 0.5), (0.10, 0.1)), 3: ((0.05, 0.3), (0.10, 0.05))},
)

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_reference_tail_interpolates_in_log_probability_and_extends_its_slope():
    tail = ImpostorTail(REFERENCE)
    assert tail.source == "reference" and tail.shift == 0.0
    assert tail.quantile(1e-3) == pytest.approx(0.08)
    assert tail.quantile(10**-3.5) == pytest.approx(0.075)
    assert tail.quantile(1e-8) == pytest.approx(0.03)  # two decades past the last point
    assert tail.cdf(0.075) == pytest.approx(10**-3.5, rel=0.02)


def test_threshold_for_a_target_fpir_follows_the_gallery_size():
    tail = ImpostorTail(REFERENCE)
    # 1 - (1 - 0.01)^(1/10) = 1.005e-3: a tenth of the target per person.
    assert calibration.threshold_for_fpir(tail, 0.01, 10) == pytest.approx(0.08, abs=3e-4)
    assert calibration.threshold_for_fpir(tail, 0.01, 1000) == pytest.approx(0.06, abs=3e-4)
    for people in (1, 10, 1000, 100_000):
        threshold = calibration.threshold_for_fpir(tail, 0.01, people)
        assert calibration.fpir_expected(tail, threshold, people) == pytest.approx(0.01, rel=0.03)
    # At a fixed threshold, ten times the people: about ten times the strangers accepted.
    assert calibration.fpir_expected(tail, 0.07, 1000) == pytest.approx(1 - (1 - 1e-4) ** 1000, rel=0.03)
    # Templates of three photos have their own, closer tail.
    assert ImpostorTail(REFERENCE, photos_per_person=3).quantile(1e-3) == pytest.approx(0.075)


def test_the_margin_rule_in_the_expected_fpir():
    tail = ImpostorTail(REFERENCE)
    # One person: no second to be clear of, the margin changes nothing.
    assert calibration.fpir_expected(tail, 0.07, 1, margin=0.2) == pytest.approx(tail.cdf(0.07), rel=0.01)
    # Many: fewer strangers pass, so the threshold for the same target may loosen a little.
    plain, with_margin = (calibration.fpir_expected(tail, 0.06, 1000, margin=m) for m in (0.0, 0.2))
    assert with_margin < plain
    assert calibration.threshold_for_fpir(tail, 0.01, 1000, 0.2) >= calibration.threshold_for_fpir(tail, 0.01, 1000)
    # Integrated by hand for two people: P(d1 <= t and d2 >= d1 + m t).
    t, m = 0.07, 0.5
    x = np.linspace(0, t, 20001)
    mid = (x[:-1] + x[1:]) / 2
    by_hand = np.sum(2 * np.diff(tail.cdf(x)) * (1 - tail.cdf(mid + m * t)))
    assert calibration.fpir_expected(tail, t, 2, margin=m) == pytest.approx(by_hand, rel=0.01)


def test_a_gallery_with_enough_pairs_moves_the_tail_to_its_own():
    # 4,000 x MIN_TAIL_PAIRS impostor pairs whose lowest 0.25 % are at 0.10: its own
    # quantile at MIN_TAIL_PAIRS / pairs is 0.10, where the reference says 0.074.
    pairs = 4_000 * calibration.MIN_TAIL_PAIRS
    lowest = np.sort(
        np.r_[np.full(10 * calibration.MIN_TAIL_PAIRS, 0.10), np.linspace(0.12, 0.5, 90 * calibration.MIN_TAIL_PAIRS)]
    )
    tail = ImpostorTail(REFERENCE, lowest, pairs)
    assert tail.source == "gallery and reference"
    assert tail.p_gallery == pytest.approx(2.5e-4)
    assert tail.shift == pytest.approx(0.10 - tail._reference_quantile(2.5e-4))
    assert tail.quantile(1e-3) == pytest.approx(0.10)  # the gallery's own, where it can tell
    assert tail.quantile(1e-5) == pytest.approx(0.06 + tail.shift)  # the reference's shape below


def test_each_photo_against_everyone_elses_template():
    vectors = np.array([[1, 0], [0, 1], [0, 1], [-1, 0]], dtype=np.float32)
    owners = np.array([7, 7, 8, 9])
    centroids, people = calibration.templates(vectors, owners)
    assert people.tolist() == [7, 8, 9]
    assert centroids[0] == pytest.approx([np.sqrt(0.5), np.sqrt(0.5)])
    lowest, pairs = calibration.gallery_impostor_distances(vectors, owners)
    assert pairs == 4 * 2  # each photo against the two templates that are not its person's
    # 7's photos to 8 (0 and 1 away) and 9 (1 and 2); 8's to 7 (1 - 0.707) and 9 (1); 9's to 7 and 8.
    expected = sorted([1, 0, 1, 2, 1 - np.sqrt(0.5), 1, 1 + np.sqrt(0.5), 1])
    assert lowest == pytest.approx(expected, abs=1e-6)


def test_calibrate_gallery_reports_growth_and_expected_misses():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 16)).astype(np.float32)
    result = calibration.calibrate_gallery(vectors, np.repeat(np.arange(10), 2), target_fpir=0.01, reference=REFERENCE)
    assert (result.people, result.photos, result.impostor_pairs) == (10, 20, 180)
    assert result.source == "reference"  # 100 of 180 pairs: shallower than the reference's 0.1
    tail = ImpostorTail(REFERENCE, photos_per_person=2)
    assert result.threshold == pytest.approx(calibration.threshold_for_fpir(tail, 0.01, 10))
    assert result.expected_fpir == pytest.approx(0.01, rel=0.03)
    assert [row["people"] for row in result.growth] == [10, 100, 1_000, 10_000]
    needed = [row["threshold_for_target"] for row in result.growth]
    assert needed == sorted(needed, reverse=True)  # a larger gallery needs a stricter threshold
    accepted = [row["fpir_at_threshold"] for row in result.growth]
    assert accepted == sorted(accepted) and accepted[-1] > 0.5  # ... or accepts ever more strangers
    # Two photos each, as far from K = 1 as from K = 3: the tie goes to K = 1, the cautious one.
    assert result.expected_fnir == pytest.approx(REFERENCE.expected_fnir(result.threshold, 1))


def test_corrections_join_the_tail():
    vectors = np.eye(4, dtype=np.float32)
    owners = np.arange(4)
    without = calibration.calibrate_gallery(vectors, owners, target_fpir=0.01, reference=REFERENCE)
    faces = [np.array([1.0, 0.02, 0, 0], dtype=np.float32)]  # corrected away from person 0
    corrected = calibration.correction_distances(vectors, owners, faces, [0])
    assert corrected == pytest.approx([1 - 1 / np.sqrt(1 + 0.02**2)], abs=1e-6)
    with_correction = calibration.calibrate_gallery(
        vectors, owners, target_fpir=0.01, reference=REFERENCE, corrected=corrected
    )
    assert with_correction.impostor_pairs == without.impostor_pairs + 1
    assert with_correction.lowest_impostor[0] == pytest.approx(corrected[0])
