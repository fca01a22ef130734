"""Detection on tiles: a large frame seen in overlapping squares as well as whole.

BlazeFace sees any frame at 192 px. A face of the smallest size the service reports
(RECOGNITION_MIN_FACE_PX, 48 px) is 14 px wide in that input when the frame is 640 px,
where the model still finds most faces, but 5 px when the frame is 1,920 px, where it
finds almost none (README, "Detection"). So a frame well larger than a tile is also seen
in tiles of that side, each at the model's input size, as a 640-px frame is seen whole.

Pure: boxes and numbers in, boxes out; the engine runs the detector.
"""

import math
from dataclasses import dataclass

from apps.recognition.pipeline.faces import Box

# Two detections of one face from different passes (the whole frame and a tile, or two
# tiles) can overlap little by IoU, a loose box around a tight one; measured on the
# group photos, they cover 0.5-0.6 of the smaller box. Two faces cover far less of each
# other, even behind one another's shoulder.
SAME_FACE_COVERAGE = 0.4
# A detection this close to a tile's inner edge is cut by it: a neighbouring tile holds
# the face whole (the overlap is larger than the faces the tiles are for).
CUT_MARGIN_PX = 2
# Frames up to this many times a tile's side are seen whole only (plan()).
WHOLE_UP_TO = 4 / 3


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    w: int
    h: int

    @property
    def window(self) -> tuple[slice, slice]:
        """The tile's rows and columns, to index a (height, width, ...) array with."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    def cuts(self, box: Box, frame_width: int, frame_height: int) -> bool:
        """Whether `box` (in the frame's pixels) touches an edge of this tile that is not
        the frame's own edge: the face goes on past it."""
        margin = CUT_MARGIN_PX
        return (
            (self.x > 0 and box.x <= self.x + margin)
            or (self.y > 0 and box.y <= self.y + margin)
            or (self.x + self.w < frame_width and box.x + box.w >= self.x + self.w - margin)
            or (self.y + self.h < frame_height and box.y + box.h >= self.y + self.h - margin)
        )


def _starts(length: int, side: int, overlap: int) -> list[int]:
    """Evenly spread starts of tiles of `side` covering `length`, each overlapping the
    next by at least `overlap`."""
    if length <= side:
        return [0]
    steps = math.ceil((length - side) / (side - overlap))
    return [round(i * (length - side) / steps) for i in range(steps + 1)]


def plan(height: int, width: int, side: int) -> list[Tile]:
    """The tiles of a frame: squares of `side` overlapping by a quarter, so that any face
    up to a quarter of a tile lies whole in one of them (larger faces are large enough
    for the whole frame). None when tiles are off (`side` 0) or the frame is at most
    WHOLE_UP_TO times a tile: such a frame (a kiosk's 640 px, for tiles of 480) is seen
    whole only, its faces almost as large as tiles would show them, for one pass
    instead of five."""
    if side <= 0 or max(height, width) <= side * WHOLE_UP_TO:
        return []
    overlap = side // 4
    return [
        Tile(x, y, min(side, width), min(side, height))
        for y in _starts(height, side, overlap)
        for x in _starts(width, side, overlap)
    ]


def coverage(a: Box, b: Box) -> float:
    """The share of the smaller box that the other covers."""
    inter_w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    inter_h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    smaller = min(a.w * a.h, b.w * b.h)
    return inter_w * inter_h / smaller if smaller else 0.0


def merge(boxes: list[Box], scores: list[float]) -> list[int]:
    """Indices of the detections to keep across passes: the best-scored of each face."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(coverage(boxes[i], boxes[j]) < SAME_FACE_COVERAGE for j in kept):
            kept.append(i)
    return sorted(kept)
