"""Where the shared test photos are: ../shared/datasets/faces, or $FACES_DIR.

Without them a test that needs them is skipped on a developer's machine, and the
run fails under CI (CI is set), so a missing dataset can never pass silently."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FACES_DIR = Path(os.environ.get("FACES_DIR", REPO.parent / "shared" / "datasets" / "faces"))


def _dataset(folder: Path, variable: str, index: str = "labels.csv") -> Path:
    if not (folder / index).is_file():
        message = f"{folder.name} not found in {folder} (set {variable})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def faces_dir() -> Path:
    return _dataset(FACES_DIR, "FACES_DIR")


def photo(name: str) -> Path:
    return faces_dir() / name


def photo_bytes(name: str) -> bytes:
    return photo(name).read_bytes()


LFW_DIR = Path(os.environ.get("LFW_DIR", REPO.parent / "shared" / "datasets" / "lfw-dev"))


def lfw_dir() -> Path:
    """lfw-dev (half of LFW, by identity), skipped or failed like the shared photos."""
    return _dataset(LFW_DIR, "LFW_DIR")


VIDEOS_DIR = Path(os.environ.get("VIDEOS_DIR", REPO.parent / "shared" / "datasets" / "videos"))


def video(name: str) -> Path:
    """A clip of ../shared/datasets/videos (or $VIDEOS_DIR), skipped or failed like the photos."""
    path = VIDEOS_DIR / name
    if not path.is_file():
        message = f"{name} not found in {VIDEOS_DIR} (set VIDEOS_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def video_frames(name: str, count: int) -> tuple[list, float]:
    """The first `count` frames of a clip (BGR arrays) and its frame rate."""
    import cv2

    capture = cv2.VideoCapture(str(video(name)))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


PEOPLE_DIR = Path(os.environ.get("PEOPLE_DIR", REPO.parent / "shared" / "datasets" / "people"))


def people_photo_bytes(name: str) -> bytes:
    """A photo of ../shared/datasets/people (or $PEOPLE_DIR), by its path there."""
    return (_dataset(PEOPLE_DIR, "PEOPLE_DIR") / name).read_bytes()


GROUPS_DIR = Path(os.environ.get("GROUPS_DIR", REPO.parent / "shared" / "datasets" / "groups"))
GROUPS_HARD_DIR = Path(os.environ.get("GROUPS_HARD_DIR", REPO.parent / "shared" / "datasets" / "groups-hard"))


def groups_dir() -> Path:
    """The annotated group photos (faces.csv, boxes.csv), skipped or failed like the photos."""
    return _dataset(GROUPS_DIR, "GROUPS_DIR", index="faces.csv")


def groups_hard_dir() -> Path:
    """Group photos of small faces in large frames, skipped or failed like the photos."""
    return _dataset(GROUPS_HARD_DIR, "GROUPS_HARD_DIR", index="faces.csv")
