"""The camera client's reading of its source, without a database: the motion gate, the
sampler, a video file and an HTTP stream that drops, read through OpenCV."""

import http.server
import io
import re
import threading
import time
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from clients import camera_client as cc
from tests.clients.helpers import free_port, image, jpeg_again, quiet_console, write_video

# --- The motion gate -----------------------------------------------------------------


def test_the_motion_gate_skips_an_unchanged_photo_and_passes_another():
    gate = cc.MotionGate(threshold=3.0)
    door = image("img4.jpg")

    assert gate.admit(door)  # the first frame always goes
    assert not gate.admit(door.copy())
    assert not gate.admit(jpeg_again(door, 60))  # JPEG artefacts are not motion
    assert gate.admit(image("img20.jpg"))  # someone else in front of the camera
    assert not gate.admit(image("img20.jpg"))
    assert gate.admit(door)
    assert gate.skipped == 3


def test_the_motion_gate_compares_with_the_last_frame_sent_so_slow_change_adds_up():
    gate = cc.MotionGate(threshold=4.5)
    door = image("img4.jpg")  # a dark background: nothing saturates as the light comes up
    # The light comes up by 2 grey levels a frame: each frame is within the threshold of
    # the one before it, but the third is beyond it from the frame that was sent.
    frames = [cv2.add(door, np.full_like(door, 2 * step)) for step in range(5)]
    steps = [float(cv2.absdiff(gate.signature(a), gate.signature(b)).mean()) for a, b in pairwise(frames)]
    assert all(change < 4.5 for change in steps), steps

    assert [gate.admit(frame) for frame in frames] == [True, False, False, True, False]
    assert gate.skipped == 3


def test_a_motion_threshold_of_zero_sends_every_frame():
    gate = cc.MotionGate(threshold=0)
    door = image("img4.jpg")
    assert [gate.admit(door) for _ in range(3)] == [True, True, True]


# --- Sampling and reading sources ----------------------------------------------------


def test_the_sampler_keeps_the_rate_on_average_and_restarts_after_a_gap():
    sampler = cc.Sampler(fps=2)
    taken = [t for t in (i * 0.04 for i in range(250)) if sampler.take(t)]  # 10 s of a 25 fps video
    assert len(taken) == 20
    assert all(0.47 <= b - a <= 0.53 for a, b in pairwise(taken)), taken

    assert sampler.take(60.0)  # a long gap (a reconnect): no burst to catch up
    assert not sampler.take(60.2)
    assert sampler.take(60.5)


def test_a_video_file_is_sampled_by_its_own_time_and_ends(tmp_path):
    video = write_video(tmp_path / "door.avi", ["img4.jpg", "img20.jpg"], seconds_each=1.0, fps=10)
    source = cc.Source(str(video), console=quiet_console())
    sampler = cc.Sampler(fps=2)
    started = time.monotonic()

    readings = list(source.frames(threading.Event(), keep=sampler.take))

    assert source.kind == "file" and not source.live
    assert [round(r.media_time, 3) for r in readings] == [0.0, 0.5, 1.0, 1.5]
    assert source.read == 20
    assert all(r.image.shape == (480, 640, 3) for r in readings)
    assert time.monotonic() - started < 1.5  # faster than real time unless --realtime


def test_a_looped_video_file_goes_on_in_video_time(tmp_path):
    video = write_video(tmp_path / "door.avi", ["img4.jpg"], seconds_each=1.0, fps=10)
    source = cc.Source(str(video), console=quiet_console(), loop=True)
    sampler, stop, times = cc.Sampler(fps=2), threading.Event(), []
    for reading in source.frames(stop, keep=sampler.take):
        times.append(round(reading.media_time, 3))
        if len(times) == 6:
            stop.set()
    assert times == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_a_realtime_video_file_is_read_at_its_own_pace(tmp_path):
    video = write_video(tmp_path / "door.avi", ["img4.jpg"], seconds_each=1.0, fps=10)
    source = cc.Source(str(video), console=quiet_console(), realtime=True)
    readings = list(source.frames(threading.Event(), keep=cc.Sampler(fps=2).take))
    gap = (readings[1].captured_at - readings[0].captured_at).total_seconds()
    assert len(readings) == 2 and 0.45 <= gap < 1.5, gap


def test_a_missing_or_undecodable_file_is_an_error(tmp_path):
    with pytest.raises(cc.SourceError, match="no such video file"):
        list(cc.Source(str(tmp_path / "none.avi"), console=quiet_console()).frames(threading.Event()))
    (tmp_path / "notes.avi").write_text("not a video")
    with pytest.raises(cc.SourceError):
        list(cc.Source(str(tmp_path / "notes.avi"), console=quiet_console()).frames(threading.Event()))


def test_source_kinds():
    assert cc.source_kind("0") == "camera"
    assert cc.source_kind("rtsp://10.0.0.7/stream") == "stream"
    assert cc.source_kind("http://10.0.0.7/video.mjpg") == "stream"
    assert cc.source_kind("door.mp4") == "file"


class StreamServer:
    """Serves a video file over HTTP, the way a network camera serves its stream; it can
    be down (nothing listens on its port) and come up later on the same port."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.server = None

    def start(self):
        handler = lambda *a, **kw: QuietFiles(*a, directory=str(self.folder), **kw)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class LineHook(io.StringIO):
    """A stderr that calls `hook(line)` for every line written: the test acts on what the
    client says, at the moment it says it, instead of sleeping and hoping."""

    def __init__(self, hook):
        super().__init__()
        self.hook = hook

    def write(self, text):
        if text.strip():
            self.hook(text)
        return super().write(text)


def test_a_stream_that_is_down_or_drops_is_reopened_with_exponential_backoff(tmp_path):
    write_video(tmp_path / "live.avi", ["img4.jpg", "img20.jpg"], seconds_each=1.0, fps=10)  # 20 frames
    camera = StreamServer(tmp_path)
    failures = []

    def on_note(line):
        if "cannot open" in line:
            failures.append(line)
            if len(failures) == 3:
                camera.start()  # the camera comes back after three failed attempts

    console = cc.Console(out=io.StringIO(), err=LineHook(on_note))
    source = cc.Source(
        f"http://127.0.0.1:{camera.port}/live.avi", console=console, reconnect_initial=0.05, reconnect_max=0.15
    )
    stop, readings = threading.Event(), []
    try:
        for reading in source.frames(stop):
            readings.append(reading)
            if len(readings) == 30:  # the stream ended once (a drop) and was reopened
                stop.set()
    finally:
        camera.stop()

    notes = console.err.getvalue()
    waits = re.findall(r"(?:trying again|reconnecting) in ([\d.]+) s", notes)
    assert waits == ["0.05", "0.1", "0.15", "0.05"], notes  # doubling to the maximum, reset once it delivered
    assert "lost http://127.0.0.1" in notes and "is back" in notes
    assert source.live and source.read == 30
    assert all(b.media_time > a.media_time for a, b in pairwise(readings))
