"""The presence challenge on real observations: the face of a performer in
`hamilton_clip.mp4` who turns their head to their right between frames 90 and 135
(yaw +0.09 to -0.34, measured from dlib's five landmarks by the real analyzer), and a
still photo of that face, captured again and again as a kiosk's camera would
(re-encoded at other JPEG qualities, so the landmarks jitter as they do)."""

import cv2
import pytest

from apps.recognition.pipeline.engine import FaceAnalyzer
from apps.recognition.pipeline.presence import MIN_TURN, Observation, challenge_verdict
from tests.faces import video_frames

FIRST, LAST = 90, 135  # the turn, in frames of the clip


@pytest.fixture(scope="module")
def clip():
    return video_frames("hamilton_clip.mp4", LAST + 31)


@pytest.fixture(scope="module")
def analyzer(deepface_home):
    return FaceAnalyzer(model_name="Dlib", detector="blazeface", deepface_home=deepface_home, detect_max_side=800)


def observe(analyzer, image, seconds: float, near: Observation | None = None) -> Observation:
    """The face nearest `near` (the largest at first), as the kiosk's server would see it."""
    faces = [f for f in analyzer.analyze(image, min_face_px=40) if f.quality.yaw is not None]
    assert faces, "no face with landmarks"
    observations = [
        Observation(
            seconds=seconds,
            x=f.face.box.x + f.face.box.w / 2,
            y=f.face.box.y + f.face.box.h / 2,
            size=float(f.face.box.w),
            yaw=f.quality.yaw,
        )
        for f in faces
    ]
    if near is None:
        return max(observations, key=lambda o: o.size)
    return min(observations, key=lambda o: (o.x - near.x) ** 2 + (o.y - near.y) ** 2)


@pytest.fixture(scope="module")
def turning(analyzer, clip):
    frames, fps = clip
    track, previous = [], None
    for index in range(FIRST, LAST + 1, 3):
        previous = observe(analyzer, frames[index], (index - FIRST) / fps, previous)
        track.append(previous)
    return track


def test_a_real_head_turn_passes_when_asked_for_and_fails_the_other_way(turning):
    assert turning[0].yaw > 0 > turning[-1].yaw  # the clip does what the docstring says
    right = challenge_verdict(turning, "right")
    assert right.passed and right.reason == "passed" and right.turn >= MIN_TURN
    left = challenge_verdict(turning, "left")
    assert not left.passed and left.reason == "wrong_way"


def test_a_still_photo_held_to_the_camera_never_passes(analyzer, clip):
    frames, fps = clip
    still = frames[FIRST]
    observations, previous = [], None
    for shot, quality in enumerate([95, 85, 75, 90, 80, 70, 88, 78, 92, 83, 73, 86, 76, 94, 84, 74]):
        _, jpeg = cv2.imencode(".jpg", still, [cv2.IMWRITE_JPEG_QUALITY, quality])
        previous = observe(analyzer, cv2.imdecode(jpeg, cv2.IMREAD_COLOR), shot * 3 / fps, previous)
        observations.append(previous)
    jitter = max(o.yaw for o in observations) - min(o.yaw for o in observations)
    assert jitter < MIN_TURN / 3, jitter  # the landmarks' noise, far below a turn
    for direction in ("left", "right"):
        verdict = challenge_verdict(observations, direction)
        assert not verdict.passed and verdict.reason == "no_turn", verdict


def test_the_turn_must_be_one_face_starting_frontal_and_in_time(turning, analyzer, clip):
    frames, fps = clip
    assert challenge_verdict(turning[:2], "right").reason == "too_few_frames"
    # Already turned away when asked (the same movement, 0.4 further to the right).
    profile = [Observation(o.seconds, o.x, o.y, o.size, o.yaw - 0.4) for o in turning]
    assert challenge_verdict(profile, "right").reason == "not_frontal"
    slow = [Observation(o.seconds * 10, o.x, o.y, o.size, o.yaw) for o in turning]  # 15 s instead of 1.5
    assert challenge_verdict(slow, "right").reason == "too_slow"
    # Someone else's face in the middle of the sequence (another performer, far away in the frame).
    other = observe(analyzer, frames[FIRST], 0.0)
    elsewhere = Observation(turning[3].seconds, turning[3].x + 4 * turning[3].size, other.y, other.size, other.yaw)
    spliced = [*turning[:3], elsewhere, *turning[4:]]
    assert challenge_verdict(spliced, "right").reason == "another_face"
