"""The face mesh's square: where the face lands in the model's input, and back."""

import numpy as np
import pytest

from apps.recognition.pipeline import face_mesh
from apps.recognition.pipeline.faces import Box

pytestmark = pytest.mark.fast


def test_the_square_centres_the_box_levels_the_eyes_and_maps_back():
    box = Box(200, 100, 80, 100)
    # Eyes on a line tilted by 20 degrees, the image's left eye first.
    angle = np.radians(20)
    centre = np.array([240.0, 150.0])
    offset = 20 * np.array([np.cos(angle), np.sin(angle)])
    eyes = np.stack([centre - offset, centre + offset])
    matrix = face_mesh.roi_matrix(box, eyes)
    mapped = eyes @ matrix[:, :2].T + matrix[:, 2]
    assert mapped[0, 1] == pytest.approx(mapped[1, 1])  # level
    assert mapped[0, 0] < mapped[1, 0]  # not mirrored
    assert centre @ matrix[:, :2].T + matrix[:, 2] == pytest.approx([96, 96])
    # 1.5 times the longer side spans the 192 pixels.
    assert np.linalg.norm(mapped[1] - mapped[0]) == pytest.approx(40 * 192 / 150)


def test_the_template_points_from_the_mesh():
    mesh = np.zeros((468, 2))
    mesh[list(face_mesh.RIGHT_EYE)] = (30, 40)
    mesh[list(face_mesh.LEFT_EYE)] = (70, 40)
    mesh[face_mesh.NOSE_TIP] = (50, 60)
    mesh[list(face_mesh.MOUTH_CORNERS)] = [(35, 80), (65, 80)]
    points = face_mesh.arcface_points_from_mesh(mesh)
    assert points.tolist() == [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]
