"""The ArcFace alignment's geometry, as plain numbers and on a real photo."""

import cv2
import numpy as np
import pytest

from apps.recognition.pipeline import alignment

pytestmark = pytest.mark.fast


def transformed(points, angle_degrees, scale, shift):
    angle = np.radians(angle_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.asarray(points) @ (scale * rotation).T + shift


def test_the_similarity_transform_undoes_a_rotation_scale_and_shift():
    face = transformed(alignment.ARCFACE_TEMPLATE, 23.0, 3.7, (410.0, 95.5))
    matrix = alignment.similarity_transform(face, alignment.ARCFACE_TEMPLATE)
    back = face @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(back - alignment.ARCFACE_TEMPLATE).max() < 1e-9
    assert np.sqrt(np.linalg.det(matrix[:, :2])) == pytest.approx(1 / 3.7)


def test_a_mirrored_face_is_not_reflected_back():
    # Points in mirror order cannot be matched by a rotation: the fit stays a rotation
    # (positive determinant), never a reflection that would flip the face's texture.
    mirrored = alignment.ARCFACE_TEMPLATE * (-1, 1) + (112, 0)
    matrix = alignment.similarity_transform(mirrored, alignment.ARCFACE_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_the_68_landmarks_give_eye_centres_nose_tip_and_mouth_corners():
    points = np.zeros((68, 2))
    points[36:42] = (10, 20)
    points[42:48] = (30, 20)
    points[30] = (20, 30)
    points[48], points[54] = (12, 40), (28, 40)
    assert alignment.arcface_points_from_68(points).tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]


def dots(side, points):
    """A grey image with a white dot at each point."""
    image = np.full((side, side, 3), 60, np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x), round(y)), max(2, side // 150), (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("scale", [0.8, 1.0, 6.0])
def test_the_crop_puts_each_point_on_the_template(scale):
    # Faces smaller and much larger than the crop (the second path shrinks by area first).
    points = transformed(alignment.ARCFACE_TEMPLATE - 56, -12.0, scale, (60 * scale + 40, 60 * scale + 40))
    crop = alignment.arcface_crop(dots(round(140 * scale + 80), points), points)
    assert crop.shape == (112, 112, 3)
    gray = crop[:, :, 0].astype(float)
    for x, y in alignment.ARCFACE_TEMPLATE:
        window = gray[round(y) - 4 : round(y) + 5, round(x) - 4 : round(x) + 5]
        peak = np.unravel_index(window.argmax(), window.shape)
        assert window.max() > 150
        assert abs(peak[0] - 4) <= 2 and abs(peak[1] - 4) <= 2


def test_a_large_face_is_shrunk_by_area_not_sampled():
    # A face of 1,000 px brought to 112: shrunk by area first, a pixel of the crop is
    # the mean of about 80 of the photo's; warpAffine alone would blend only 4.
    noise = np.random.default_rng(0).integers(0, 2, (1400, 1400), dtype=np.uint8) * 255
    points = transformed(alignment.ARCFACE_TEMPLATE - 56, 0.0, 9.0, (700, 700))
    crop = alignment.arcface_crop(np.dstack([noise] * 3), points)
    # Averaged noise is grey (about 127 with a small spread); sampled noise is 0 or 255.
    assert 100 < crop.mean() < 155
    assert crop.std() < 40
