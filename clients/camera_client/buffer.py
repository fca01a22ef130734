"""Frames waiting to be sent: encoded once, kept in a bounded buffer, oldest first."""

from __future__ import annotations

import collections
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

JPEG_QUALITY = 90


@dataclass
class PendingFrame:
    jpeg: bytes
    captured_at: datetime
    # One key per frame: if a POST dies after the API stored the frame, the retry gets the
    # first answer back instead of storing the frame twice.
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    buffered: bool = False  # it waited here because the API was unreachable


def encode_frame(image: np.ndarray, captured_at: datetime) -> PendingFrame:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return PendingFrame(jpeg.tobytes(), captured_at)


class FrameBuffer:
    """Frames waiting to be sent, oldest first, at most `capacity` of them.

    When it is full the oldest frame is dropped: for a live camera the newest frames are
    worth more. A video file is not live, so its reader waits for room instead
    (`put(block=True)`) and nothing of a file is dropped. While the API is unreachable
    the buffer is `holding`: every frame in it or put into it counts as buffered."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("the buffer must hold at least one frame")
        self.capacity = capacity
        self.dropped = 0
        self.buffered = 0
        self._frames: collections.deque[PendingFrame] = collections.deque()
        self._changed = threading.Condition()
        self._holding = False

    def __len__(self) -> int:
        with self._changed:
            return len(self._frames)

    def put(self, frame: PendingFrame, *, block: bool = False, stop: threading.Event | None = None):
        """Add the newest frame; return the frame dropped to make room, if one was."""
        with self._changed:
            # A blocked reader looks at `stop` every 0.2 s: a client stopped by a fatal answer must not hang here.
            while block and len(self._frames) >= self.capacity and not (stop and stop.is_set()):
                self._changed.wait(0.2)
            self._mark(frame)
            self._frames.append(frame)
            dropped = self._frames.popleft() if len(self._frames) > self.capacity and not block else None
            self.dropped += dropped is not None
            self._changed.notify_all()
            return dropped

    def requeue(self, frame: PendingFrame):
        """Put back a frame that could not be sent: it is still the oldest. If frames came in
        meanwhile and filled the buffer, it is the one that goes."""
        with self._changed:
            self._mark(frame)
            self._frames.appendleft(frame)
            dropped = self._frames.popleft() if len(self._frames) > self.capacity else None
            self.dropped += dropped is not None
            self._changed.notify_all()
            return dropped

    def pop_oldest(self, timeout: float = 0.0) -> PendingFrame | None:
        with self._changed:
            if not self._frames and timeout > 0:
                self._changed.wait(timeout)
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._changed.notify_all()
            return frame

    def hold(self, holding: bool) -> None:
        with self._changed:
            self._holding = holding
            for frame in self._frames:
                self._mark(frame)

    def _mark(self, frame: PendingFrame) -> None:
        if self._holding and not frame.buffered:
            frame.buffered = True
            self.buffered += 1
