"""A face found in an image: its box, the detector's confidence and its landmarks."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    def as_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


Point = tuple[int, int]


@dataclass(frozen=True)
class DetectedFace:
    box: Box  # in the original image's pixels
    confidence: float
    left_eye: Point | None
    right_eye: Point | None
    # dlib's 5 landmarks (two corners of each eye, the base of the nose), found on the
    # original pixels: they drive dlib's face chip and the pose estimate.
    landmarks: tuple[Point, ...] = ()
    # The ArcFace template's points (eye centres, nose tip, then the mouth's corners, or
    # its centre from BlazeFace; image's left first), in sub-pixel precision, for models
    # aligned that way; () for the others.
    arcface_points: tuple[tuple[float, float], ...] = ()
