"""BlazeFace through DeepFace's detector interface, with the real model on real photos."""

import cv2
import numpy as np
import pytest
from deepface.modules import modeling

from apps.recognition.pipeline import blazeface, catalog
from apps.recognition.pipeline.blazeface import FULL_RANGE, BlazeFace, ssd_anchors
from tests.faces import faces_dir


@pytest.fixture(scope="module")
def client(deepface_home):
    catalog.use_deepface_home(deepface_home)  # as FaceAnalyzer does: alone, no test did it before
    blazeface.register()
    return modeling.get_model_class(task="face_detector", model_name=blazeface.NAME)()


def test_anchors_follow_the_full_range_grid():
    anchors = ssd_anchors(FULL_RANGE)
    # One anchor per cell of a 48 x 48 grid (192 px, stride 4), row by row.
    assert anchors.shape == (48 * 48, 2)
    assert tuple(anchors[0]) == pytest.approx((0.5 / 48, 0.5 / 48))
    assert tuple(anchors[1]) == pytest.approx((1.5 / 48, 0.5 / 48))
    assert tuple(anchors[48]) == pytest.approx((0.5 / 48, 1.5 / 48))


def test_two_people_are_found_with_their_eyes_named_from_their_side(client):
    image = cv2.imread(str(faces_dir() / "couple.jpg"))
    regions = client.detect_faces(image)
    assert len(regions) == 2
    height, width = image.shape[:2]
    for region in regions:
        assert 0 <= region.x < region.x + region.w <= width and 0 <= region.y < region.y + region.h <= height
        assert region.confidence >= 0.5
        # DeepFace's left eye is the person's: on the right of the picture.
        assert region.left_eye[0] > region.right_eye[0]
        assert region.x < region.right_eye[0] < region.left_eye[0] < region.x + region.w
        assert region.y < region.left_eye[1] < region.nose[1] < region.y + region.h


def test_a_blank_frame_has_no_face(deepface_home):
    model = BlazeFace(catalog.weights_dir(deepface_home), FULL_RANGE)
    assert len(model.run(np.full((480, 640, 3), 128, np.uint8)).scores) == 0
