"""Passive liveness with the real fr_liveness model on real photos: live faces score
live; the window the model reads stays inside the photo."""

import cv2
import numpy as np
import pytest

from apps.recognition.pipeline import catalog, weights
from apps.recognition.pipeline.engine import FaceAnalyzer
from apps.recognition.pipeline.faces import Box
from apps.recognition.pipeline.liveness import INPUT_SIDE, LivenessModel, window
from tests.faces import faces_dir


@pytest.fixture(scope="module")
def model(deepface_home):
    return LivenessModel(catalog.weights_dir(deepface_home) / catalog.LIVENESS_WEIGHTS)


def test_the_window_is_the_face_and_its_surroundings_inside_the_photo():
    image = np.zeros((400, 600, 3), dtype=np.uint8)
    image[100:200, 250:350] = 255  # the face, 100 px, in the middle
    crop = window(image, Box(250, 100, 100, 100))
    assert crop.shape == (INPUT_SIDE, INPUT_SIDE, 3)
    # 2.7 times the face: the white square fills about (1 / 2.7)^2 of the window.
    assert (crop[..., 0] > 127).mean() == pytest.approx(1 / 2.7**2, abs=0.03)
    # A face at the corner: the window shifts inside the photo instead of leaving it.
    corner = window(image, Box(0, 0, 80, 60))
    assert corner.shape == (INPUT_SIDE, INPUT_SIDE, 3)
    # A face as large as the photo: the window is the whole photo, no larger.
    assert window(image, Box(0, 0, 600, 400)).shape == (INPUT_SIDE, INPUT_SIDE, 3)


def test_live_faces_of_the_shared_photos_score_live(model, deepface_home):
    analyzer = FaceAnalyzer(model_name="Dlib", detector="blazeface", deepface_home=deepface_home, detect_max_side=1280)
    scores = {}
    for path in sorted(faces_dir().glob("*.jpg")):
        image = cv2.imread(str(path))
        found = analyzer.detect(image)
        if found:
            scores[path.name] = model.scores(image, [max(found, key=lambda f: f.box.w * f.box.h).box])[0]
    assert len(scores) >= 20
    assert all(0 <= score <= 1 for score in scores.values())
    # Measured: every one of them over 0.9 (README, "Liveness").
    called_spoof = sorted(name for name, score in scores.items() if score < 0.5)
    assert called_spoof == [], scores


def test_a_file_of_another_shape_is_refused(deepface_home):
    embedder = catalog.weights_dir(deepface_home) / "faceplugin_fr_feature.onnx"
    with pytest.raises(ValueError, match="takes"):
        weights.check_shipped_file(embedder, catalog.LIVENESS_WEIGHTS)
    weights.check_shipped_file(catalog.weights_dir(deepface_home) / catalog.LIVENESS_WEIGHTS, catalog.LIVENESS_WEIGHTS)


def test_error_rates_and_their_intervals_are_iso_30107_3s():
    from apps.recognition.pipeline.liveness import error_rate, wilson_interval

    # BPCER: bona fide called attacks; APCER: attacks called bona fide.
    assert error_rate([0.9, 0.4, 0.6], 0.5, bona_fide=True) == (1, 3)
    assert error_rate([0.9, 0.4, 0.6], 0.5, bona_fide=False) == (2, 3)
    # Wilson's interval, by hand: 0 of 28 still allows up to 12.1 %.
    assert wilson_interval(0, 28) == pytest.approx((0.0, 0.1206), abs=1e-4)
    assert wilson_interval(56, 548) == pytest.approx((0.0796, 0.1302), abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
