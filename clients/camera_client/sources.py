"""Reading a camera, a stream or a video file, sampled by time and by motion."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from .console import Console, now

STREAM_TIMEOUT_MS = 10_000  # a stalled stream counts as dropped after this, instead of FFmpeg's 30 s


@dataclass
class Reading:
    image: np.ndarray
    media_time: float  # seconds on the clock frames are sampled by: video time for a file, monotonic otherwise
    captured_at: datetime


class SourceError(Exception):
    """The source can never be read (a missing or unreadable file): retrying would not help."""


def source_kind(spec: str) -> str:
    if spec.isdigit():
        return "camera"
    if "://" in spec:
        return "stream"
    try:
        if stat.S_ISCHR(os.stat(spec).st_mode):  # /dev/video0: a camera by its device path
            return "camera"
    except OSError:
        pass
    return "file"


def open_capture(spec: str, kind: str) -> cv2.VideoCapture:
    if kind == "camera":
        return cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
    if kind == "stream":
        return cv2.VideoCapture(
            spec,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS],
        )
    return cv2.VideoCapture(spec)


class Source:
    """Frames from a camera, a stream or a file, through cv2.VideoCapture.

    Every frame is grabbed (a live source's driver buffer must not fill up with stale
    frames) but only those `keep(media_time)` wants are decoded into pixels. A camera or
    stream that cannot be opened or stops delivering is reopened with exponential
    backoff, for ever: cameras reboot and networks come back. A file ends the run at its
    end, or starts over with --loop, its video time going on from where it stopped."""

    def __init__(
        self,
        spec: str,
        *,
        console: Console,
        loop: bool = False,
        realtime: bool = False,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 30.0,
    ):
        self.spec = spec
        self.kind = source_kind(spec)
        self.console = console
        self.loop = loop
        self.realtime = realtime
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.read = 0  # frames grabbed from the source

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def frames(self, stop: threading.Event, keep: Callable[[float], bool] = lambda t: True) -> Iterator[Reading]:
        return self._live_frames(stop, keep) if self.live else self._file_frames(stop, keep)

    def _live_frames(self, stop, keep):
        backoff = self.reconnect_initial
        lost = False
        while not stop.is_set():
            capture = open_capture(self.spec, self.kind)
            if not capture.isOpened():
                capture.release()
                self.console.note(f"cannot open {self.spec}; trying again in {backoff:g} s")
                stop.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max)
                continue
            if lost:
                self.console.note(f"{self.spec} is back")
            try:
                while not stop.is_set() and capture.grab():
                    backoff = self.reconnect_initial  # it delivers again: the next drop starts from short waits
                    self.read += 1
                    captured_at, media_time = now(), time.monotonic()
                    if keep(media_time):
                        ok, image = capture.retrieve()
                        if ok:
                            yield Reading(image, media_time, captured_at)
            finally:
                capture.release()
            if stop.is_set():
                return
            lost = True
            self.console.note(f"lost {self.spec} (no frame); reconnecting in {backoff:g} s")
            stop.wait(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    def _file_frames(self, stop, keep):
        if not os.path.isfile(self.spec):
            raise SourceError(f"no such video file: {self.spec}")
        offset = 0.0  # video time of the file's start in this run: grows with every --loop
        started = None  # the monotonic time of video time 0, for --realtime
        while not stop.is_set():
            capture = open_capture(self.spec, self.kind)
            if not capture.isOpened():
                capture.release()
                raise SourceError(f"cannot read {self.spec} as a video")
            fps = capture.get(cv2.CAP_PROP_FPS)
            period = 1 / fps if 0 < fps < 1000 else 1 / 25  # some containers do not say
            index, media_time = 0, offset
            try:
                while not stop.is_set() and capture.grab():
                    self.read += 1
                    media_time = offset + file_position(capture, index, period)
                    index += 1
                    if self.realtime:  # pace to video time, as a camera would deliver it
                        started = time.monotonic() - media_time if started is None else started
                        stop.wait(max(0.0, started + media_time - time.monotonic()))
                        if stop.is_set():
                            return
                    captured_at = now()
                    if keep(media_time):
                        ok, image = capture.retrieve()
                        if ok:
                            yield Reading(image, media_time, captured_at)
            finally:
                capture.release()
            if index == 0 and offset == 0.0:
                raise SourceError(f"{self.spec} has no frame that OpenCV can decode")
            if not self.loop or index == 0:
                return
            offset = media_time + period


def file_position(capture: cv2.VideoCapture, index: int, period: float) -> float:
    """Seconds into the file of the frame just grabbed: its own timestamp, or, where the
    backend gives none, its number over the frame rate."""
    msec = capture.get(cv2.CAP_PROP_POS_MSEC)
    if msec > 0 or index == 0:
        return msec / 1000
    return index * period


class Sampler:
    """At most `fps` frames a second of the source's clock, on average: the next frame is
    due one period after the previous one was due, not after it came, so a 10 fps file
    sampled at 3 fps gives 3 frames a second (0, 0.4, 0.7, 1.0 s), not 2.5 (0, 0.4, 0.8 s)."""

    TOLERANCE = 1e-3  # video timestamps like 0.30000000000000004 must not miss their slot

    def __init__(self, fps: float):
        self.period = 1 / fps
        self.due: float | None = None
        self.sampled = 0

    def take(self, media_time: float) -> bool:
        if self.due is not None and media_time < self.due - self.TOLERANCE:
            return False
        following = (self.due if self.due is not None else media_time) + self.period
        # After a gap (a reconnect, a pause) start again from now instead of catching up.
        self.due = following if following > media_time else media_time + self.period
        self.sampled += 1
        return True


class MotionGate:
    """Lets a frame through only when it differs from the last frame let through.

    Frames are compared as small, blurred grayscale copies, so sensor noise and JPEG
    artefacts do not count as change; the score is the mean absolute difference in grey
    levels (0-255). Comparing with the last frame *sent*, not the previous one, means a
    slow change (a person creeping in, the light fading) still gets through once it adds
    up. The first frame always goes. A threshold of 0 lets every frame through."""

    SIZE = (160, 120)  # a fixed size: a stream that comes back at another resolution compares fine

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.last: np.ndarray | None = None
        self.skipped = 0

    @classmethod
    def signature(cls, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        small = cv2.resize(gray, cls.SIZE, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def admit(self, image: np.ndarray) -> bool:
        signature = self.signature(image)
        if self.last is not None and float(cv2.absdiff(signature, self.last).mean()) < self.threshold:
            self.skipped += 1
            return False
        self.last = signature
        return True
