import pytest

from apps.recognition.pipeline.quality import Quality, score

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_score_prefers_large_sharp_frontal_faces():
    best = Quality(size=200, sharpness=400.0, confidence=1.0, yaw=0.0, roll=0.0)
    assert score(best) == 1.0
    assert score(Quality(size=60, sharpness=400.0, confidence=1.0, yaw=0.0, roll=0.0)) < score(best)
    assert score(Quality(size=200, sharpness=20.0, confidence=1.0, yaw=0.0, roll=0.0)) < score(best)
    assert score(Quality(size=200, sharpness=400.0, confidence=1.0, yaw=0.4, roll=0.0)) < score(best)
    assert 0.0 <= score(Quality(size=10, sharpness=0.0, confidence=0.1, yaw=None, roll=None)) <= 1.0
