"""The evaluation's metrics on small score sets whose answers are known by hand."""

import numpy as np
import pytest

from apps.recognition.pipeline import datasets, evaluation
from apps.recognition.pipeline.evaluation import Ranked

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_10fold_verification_picks_each_threshold_on_the_other_folds():
    # Ten folds of four pairs: genuine at 0.1 and 0.2, impostors at 0.5 and 0.6, except
    # fold 3, whose impostor at 0.15 no threshold can reject without losing the 0.2 genuine.
    distances = np.tile([0.1, 0.2, 0.5, 0.6], 10).astype(float)
    same = np.tile([True, True, False, False], 10)
    folds = np.repeat(np.arange(1, 11), 4)
    distances[8 + 2] = 0.15
    result = evaluation.verification_10fold(distances, same, folds)
    assert result["fold_accuracies"][2] == 0.75
    assert all(a == 1.0 for i, a in enumerate(result["fold_accuracies"]) if i != 2)
    assert result["accuracy"] == pytest.approx(0.975)
    # Trained on folds that hold the 0.15 impostor, the best threshold lies between 0.2 and 0.5.
    assert all(0.2 < t < 0.5 for i, t in enumerate(result["fold_thresholds"]) if i != 2)


def test_a_pair_without_a_face_counts_as_different():
    distances = np.array([0.1, np.inf, 0.6, 0.7])
    same = np.array([True, True, False, False])
    assert ((distances <= evaluation.best_threshold(distances, same)) == same).mean() == 0.75


def test_tar_at_far_allows_exactly_the_share_of_impostors():
    impostor = np.linspace(0.30, 0.80, 1000)  # 0.1 % of 1,000 = one impostor may pass
    genuine = np.array([0.1, 0.2, 0.3004, 0.31])
    distances = np.concatenate([genuine, impostor])
    same = np.r_[np.ones(4, bool), np.zeros(1000, bool)]
    tar, threshold = evaluation.tar_at_far(distances, same, 0.001)
    assert impostor[0] <= threshold < impostor[1]
    assert tar == 0.75  # 0.1, 0.2 and 0.3004 (below the second impostor at 0.3005)


def test_person_scores_nearest_centroid_and_two_nearest():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    owners = np.array([0, 0, 1, 2])
    probe = np.array([[1.0, 0.0]], dtype=np.float32)
    nearest = evaluation.person_scores(probe, gallery, owners, 4, "nearest")
    assert nearest[0, :3] == pytest.approx([0.0, 0.0, 2.0]) and nearest[0, 3] == np.inf  # person 3: no photo
    centroid = evaluation.person_scores(probe, gallery, owners, 3, "centroid")
    assert centroid[0] == pytest.approx([1 - np.sqrt(0.5), 0.0, 2.0], abs=1e-6)
    knn2 = evaluation.person_scores(probe, gallery, owners, 3, "knn2")
    assert knn2[0, 0] == pytest.approx(0.5)  # mean of 0 and 1


def test_operating_point_counts_recognized_misidentified_strangers_and_accepted():
    mated = Ranked.of(np.array([[0.10, 0.50], [0.15, 0.30], [0.40, 0.60]]))
    mates = np.array([0, 1, 0])  # the second probe's nearest is person 0, not its mate
    nonmated = Ranked.of(np.array([[0.19, 0.80], [0.50, 0.90]]))
    figures = evaluation.operating_point(mated, mates, nonmated, threshold=0.2, margin=0.0)
    assert figures == {
        "mated_recognized": pytest.approx(1 / 3),
        "mated_misidentified": pytest.approx(1 / 3),
        "mated_called_stranger": pytest.approx(1 / 3),
        "strangers_accepted": 0.5,
    }
    # A margin of 0.8 x 0.2 = 0.16: the second probe (gap 0.15) becomes a stranger.
    with_margin = evaluation.operating_point(mated, mates, nonmated, threshold=0.2, margin=0.8)
    assert with_margin["mated_misidentified"] == 0.0 and with_margin["mated_called_stranger"] == pytest.approx(2 / 3)


def test_fnir_at_fpir_and_closed_set_rank1():
    nonmated = Ranked.of(np.column_stack([np.arange(1, 11) / 10, np.ones(10)]))
    mated = Ranked.of(np.array([[0.05, 1.0], [0.15, 1.0], [0.25, 1.0], [1.0, 0.15], [np.nan, np.nan]]))
    mates = np.array([0, 0, 0, 0, 0])  # the fourth probe is nearer person 1; the fifth had no face
    fnir, threshold = evaluation.fnir_at_fpir(mated, mates, nonmated, 0.1)
    assert 0.1 <= threshold < 0.2  # one stranger in ten accepted
    assert fnir == pytest.approx(1 - 2 / 5)  # the probes at 0.05 and 0.15 are first and within it
    assert evaluation.rank1(mated, mates) == pytest.approx(3 / 5)
    # The margin sweep gives the same answer when no margin is asked.
    fnir_swept, _ = evaluation.fnir_at_fpir(mated, mates, nonmated, 0.1, margin=1e-12)
    assert fnir_swept == pytest.approx(fnir)


def test_open_set_split_enrolls_the_first_k_photos_and_keeps_strangers_apart(tmp_path):
    photos = [
        datasets.Photo(tmp_path / f"{who}{n}", who)
        for who, count in (("a", 3), ("b", 2), ("c", 1))
        for n in range(count)
    ]
    vectors = {p.path: np.array([i + 1.0, 1.0], dtype=np.float32) for i, p in enumerate(photos)}
    vectors[photos[1].path] = None  # a's second photo: no face found
    split = evaluation.split_open_set(vectors, photos, enroll_per_identity=1)
    assert split.people == ["a", "b"] and len(split.gallery) == 2
    assert len(split.mates) == 3 and np.isnan(split.mated[0]).all()  # a's faceless photo is a mated miss
    assert split.nonmated_identities == ["c"]
    grown = evaluation.split_open_set(vectors, photos, enroll_per_identity=1, people={"a"}, distractors={"c"})
    assert grown.people == ["a", "c"] and grown.nonmated_identities == ["b", "b"]


def test_the_labelled_face_is_the_central_one_or_the_largest():
    from apps.recognition.pipeline.face_cache import CachedFace
    from apps.recognition.pipeline.faces import Box

    def face(x, y, side):
        return CachedFace(Box(x, y, side, side), 1.0, {}, np.zeros(2), None)

    faces = [face(0, 0, 120), face(80, 80, 90)]  # a large face at the edge, a smaller one centred
    assert evaluation.pick_face(faces, (250, 250), "central") == 1
    assert evaluation.pick_face(faces, (250, 250), "largest") == 0
    assert evaluation.pick_face([], (250, 250), "central") is None
