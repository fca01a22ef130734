"""The camera client (clients/camera_client/), on real photos and real video files.

Its pieces are tested on their own, without a database: the motion gate, the buffer,
the sampler, a video file and an HTTP stream that drops read through OpenCV, and the
sender and delivery loop against `ApiPeer`, a small HTTP server standing in for the API
(a remote peer, scripted to answer 200, 429, 503 or nothing at all). Then the client
runs as a subprocess against the live application with a real Celery worker: it names
id01 and a stranger from a video, and its frames survive an API outage, through a TCP
proxy of the test's own that is switched off mid-run and on again."""

import email
import email.policy
import http.server
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest
import requests

from clients import camera_client as cc
from tests.faces import photo
from tests.worker import enroll, wait_for

REPO = Path(__file__).resolve().parents[2]


# --- Helpers: real images and videos -------------------------------------------------


def image(name: str) -> np.ndarray:
    pixels = cv2.imread(str(photo(name)))
    assert pixels is not None, name
    return pixels


def letterbox(pixels: np.ndarray, size=(640, 480)) -> np.ndarray:
    width, height = size
    scale = min(width / pixels.shape[1], height / pixels.shape[0])
    resized = cv2.resize(pixels, (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale)), cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def write_video(path: Path, photos: list[str], seconds_each: float = 1.0, fps: int = 10) -> Path:
    """An MJPG .avi at 640x480 showing each photo, letterboxed, for `seconds_each`."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    for name in photos:
        still = letterbox(image(name))
        for _ in range(round(seconds_each * fps)):
            writer.write(still)
    writer.release()
    return path


def jpeg_again(pixels: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def quiet_console() -> cc.Console:
    return cc.Console(out=io.StringIO(), err=io.StringIO())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SUMMARY = re.compile(
    r"summary: read (?P<read>\d+), sampled (?P<sampled>\d+), skipped (?P<skipped>\d+) \(no motion\), "
    r"sent (?P<sent>\d+), buffered (?P<buffered>\d+), dropped (?P<dropped>\d+), "
    r"rejected (?P<rejected>\d+), unsent (?P<unsent>\d+)"
)


def summary(stdout: str) -> dict:
    found = SUMMARY.search(stdout)
    assert found, stdout
    return {name: int(value) for name, value in found.groupdict().items()}


RESULT_LINE = re.compile(r"^(\S+[+-]\d\d:\d\d) (.+)$", re.MULTILINE)


def to_the_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def result_lines(stdout: str) -> list[tuple[datetime, str]]:
    return [(datetime.fromisoformat(when), rest) for when, rest in RESULT_LINE.findall(stdout)]


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


# --- The buffer ----------------------------------------------------------------------


def frames_at(*seconds: float) -> list[cc.PendingFrame]:
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    return [cc.PendingFrame(b"jpeg %g" % s, start + timedelta(seconds=s)) for s in seconds]


def drain(buffer: cc.FrameBuffer) -> list[cc.PendingFrame]:
    taken = []
    while (frame := buffer.pop_oldest()) is not None:
        taken.append(frame)
    return taken


def test_a_full_buffer_drops_its_oldest_frames_and_says_how_many():
    buffer = cc.FrameBuffer(capacity=3)
    frames = frames_at(0, 1, 2, 3, 4)

    dropped = [buffer.put(frame) for frame in frames]

    assert dropped == [None, None, None, frames[0], frames[1]]
    assert (len(buffer), buffer.dropped) == (3, 2)
    assert drain(buffer) == frames[2:]  # oldest first


def test_a_frame_put_back_stays_the_oldest_and_goes_first_when_the_buffer_overflows():
    buffer = cc.FrameBuffer(capacity=2)
    first, second, third = frames_at(0, 1, 2)
    buffer.put(first)
    taken = buffer.pop_oldest()  # in flight ...
    buffer.put(second)
    assert buffer.requeue(taken) is None  # ... and back: still first in line
    assert drain(buffer) == [first, second]

    buffer.put(second)
    buffer.put(third)
    assert buffer.requeue(first) is first  # full: the oldest is the one that goes
    assert buffer.dropped == 1
    assert drain(buffer) == [second, third]


def test_a_blocking_put_waits_for_room_instead_of_dropping():
    buffer = cc.FrameBuffer(capacity=1)
    first, second = frames_at(0, 1)
    buffer.put(first, block=True)
    writer = threading.Thread(target=buffer.put, args=(second,), kwargs={"block": True})
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and len(buffer) == 1  # waiting for room

    assert buffer.pop_oldest() is first
    writer.join(5)
    assert not writer.is_alive()
    assert drain(buffer) == [second] and buffer.dropped == 0


def test_a_blocked_put_gives_up_waiting_when_the_client_stops():
    buffer = cc.FrameBuffer(capacity=1)
    first, second = frames_at(0, 1)
    stop = threading.Event()
    buffer.put(first, block=True, stop=stop)
    writer = threading.Thread(target=buffer.put, args=(second,), kwargs={"block": True, "stop": stop})
    writer.start()
    stop.set()
    writer.join(5)
    assert not writer.is_alive()
    assert drain(buffer) == [first, second]  # kept for the final flush, not lost


def test_frames_count_as_buffered_once_while_the_api_is_unreachable():
    buffer = cc.FrameBuffer(capacity=10)
    early, during, after = frames_at(0, 1, 2)
    buffer.put(early)
    buffer.hold(True)  # the API went away: what waits now is buffered
    buffer.put(during)
    buffer.hold(True)
    buffer.hold(False)
    buffer.put(after)
    assert buffer.buffered == 2
    assert [f.buffered for f in drain(buffer)] == [True, True, False]


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


# --- Sending: a scripted stand-in for the API -----------------------------------------


class ApiPeer:
    """Stands in for the Faces API over real HTTP: records every POST to /api/v1/frames/
    and answers from `script` (status, body, headers), or with a recognized frame."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict] = []
        self.script: deque = deque()
        self.down = False  # answer 503, like a service whose database is gone
        self.server = None
        self.lock = threading.Lock()

    def start(self):
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer, headers = peer.answer(self, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler, body):
        message = email.message_from_bytes(
            f"Content-Type: {handler.headers['Content-Type']}\r\n\r\n".encode() + body, policy=email.policy.HTTP
        )
        fields = {
            part.get_param("name", header="content-disposition"): part.get_content() for part in message.iter_parts()
        }
        with self.lock:
            request = {
                "path": urlsplit(handler.path).path,
                "query": parse_qs(urlsplit(handler.path).query),
                "headers": dict(handler.headers),
                "fields": fields,
            }
            if self.down:
                status, answer, headers = 503, {"error": {"code": "unavailable", "message": "down"}}, {}
            elif self.script:
                status, answer, headers = self.script.popleft()
            else:
                status, answer, headers = 200, recognized(len(self.requests) + 1, fields["captured_at"]), {}
            request["status"] = status
            self.requests.append(request)
        return status, answer, headers

    def delivered(self) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200]


def recognized(frame_id: int, captured_at: str) -> dict:
    return {
        "id": frame_id,
        "status": "done",
        "url": f"http://api/api/v1/frames/{frame_id}/",
        "camera": None,
        "captured_at": captured_at,
        "error": None,
        "faces": [
            {"person": {"id": 1, "name": "id01"}, "similarity": 0.9712, "distance": 0.02, "threshold": 0.07},
            {"person": None, "similarity": 0.02, "distance": 0.18, "threshold": 0.07},
        ],
    }


@pytest.fixture
def peer():
    api = ApiPeer().start()
    yield api
    api.stop()


def photo_frame(name: str, captured_at: datetime) -> cc.PendingFrame:
    return cc.encode_frame(letterbox(image(name)), captured_at)


def test_the_sender_posts_the_jpeg_with_its_capture_time_camera_and_key(peer):
    captured_at = datetime(2026, 11, 22, 10, 0, 1, 250000, tzinfo=UTC)
    frame = photo_frame("img4.jpg", captured_at)
    sender = cc.Sender(peer.url + "/", "secret-key", camera=7, wait=5)

    outcome = sender.send(frame)

    assert isinstance(outcome, cc.Delivered) and outcome.body["status"] == "done"
    [request] = peer.requests
    assert request["path"] == "/api/v1/frames/" and request["query"] == {"wait": ["5"]}
    assert request["headers"]["Authorization"] == "Api-Key secret-key"
    assert request["headers"]["Idempotency-Key"] == frame.key
    fields = request["fields"]
    assert datetime.fromisoformat(fields["captured_at"]) == captured_at
    assert fields["camera"] == "7"
    sent = cv2.imdecode(np.frombuffer(fields["image"], np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape == (480, 640, 3)
    assert cc.MotionGate.signature(sent).astype(int).mean() > 10  # the photo, not a blank frame
    assert cv2.absdiff(cc.MotionGate.signature(sent), cc.MotionGate.signature(letterbox(image("img4.jpg")))).mean() < 1


def test_results_are_printed_one_line_per_frame_with_faces():
    frame = cc.PendingFrame(b"", datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC))
    when = "2026-11-22T10:00:01.000+00:00"
    assert cc.describe(frame, recognized(4, "x")) == ("out", f"{when} id01 (0.97), unknown")
    assert cc.describe(frame, {"id": 5, "status": "done", "faces": []}) is None
    queued = cc.describe(frame, {"id": 6, "status": "queued", "url": "http://api/api/v1/frames/6/"})
    assert queued == ("out", f"{when} accepted as frame 6 (queued); result at http://api/api/v1/frames/6/")
    failed = {"id": 7, "status": "failed", "error": {"code": "image_invalid", "message": "truncated"}}
    assert cc.describe(frame, failed) == ("err", f"{when} frame 7 failed: image_invalid: truncated")


def test_frames_wait_while_the_api_is_unreachable_and_go_out_in_order_when_it_returns(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "k", wait=5), console)
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    frames = [photo_frame(name, start + timedelta(seconds=i)) for i, name in enumerate(["img4.jpg", "img20.jpg"])]
    for frame in frames:
        buffer.put(frame)

    peer.down = True
    assert delivery.step() == 1.0  # 503: keep it, wait 1 s
    peer.stop()
    assert delivery.step() == 2.0  # nobody listens: connection refused, wait longer
    late = photo_frame("img13.jpg", start + timedelta(seconds=2))
    buffer.put(late)  # captured during the outage
    assert (len(buffer), delivery.sent, delivery.unsent) == (3, 0, 3)

    peer.down = False
    peer.start()
    assert [delivery.step() for _ in range(4)] == [0.0, 0.0, 0.0, None]  # all three, then nothing left

    assert [r["headers"]["Idempotency-Key"] for r in peer.delivered()] == [f.key for f in [*frames, late]]
    assert [datetime.fromisoformat(r["fields"]["captured_at"]) for r in peer.delivered()] == [
        start + timedelta(seconds=i) for i in range(3)
    ]
    assert peer.requests[0]["headers"]["Idempotency-Key"] == frames[0].key  # the 503 was a try of the same frame
    assert (delivery.sent, buffer.buffered, buffer.dropped) == (3, 3, 0)
    notes = console.err.getvalue()
    assert "API unreachable (503 unavailable: down)" in notes
    assert "API still unreachable (ConnectionError: [Errno 111] Connection refused)" in notes
    assert "API answers again; sending 2 buffered frames" in notes
    lines = console.out.getvalue().splitlines()
    assert lines == [f"{cc.stamp(f.captured_at)} id01 (0.97), unknown" for f in [*frames, late]]

    buffer.put(photo_frame("img14.jpg", start + timedelta(seconds=3)))
    peer.down = True
    assert delivery.step() == 1.0  # the next outage starts again from a short wait


def test_429_is_retried_after_retry_after_and_a_refused_frame_is_not_retried(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "k", wait=0), console)
    busy, bad, good = frames_at(0, 1, 2)
    bad.jpeg = b"not a jpeg"
    busy.jpeg = good.jpeg = photo_frame("img4.jpg", busy.captured_at).jpeg
    for frame in (busy, bad, good):
        buffer.put(frame)
    throttled = {"error": {"code": "throttled", "message": "slow down"}}
    invalid = {"error": {"code": "image_invalid", "message": "not an image"}}
    queued = {"id": 9, "status": "queued", "url": "http://api/api/v1/frames/9/"}
    peer.script.extend(
        [(429, throttled, {"Retry-After": "7"}), (202, queued, {}), (400, invalid, {}), (200, queued, {})]
    )

    assert delivery.step() == 7.0  # Retry-After honoured; the frame keeps its place
    assert buffer.pop_oldest() is busy and buffer.requeue(busy) is None
    assert [delivery.step() for _ in range(3)] == [0.0, 0.0, 0.0]

    keys = [r["headers"]["Idempotency-Key"] for r in peer.requests]
    assert keys == [busy.key, busy.key, bad.key, good.key]  # the refused frame was tried once
    assert (delivery.sent, delivery.rejected, delivery.unsent) == (2, 1, 0)
    assert "refused: 400 image_invalid: not an image" in console.err.getvalue()
    assert "accepted as frame 9 (queued)" in console.out.getvalue()


def test_a_refused_api_key_stops_the_client(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    stopped = threading.Event()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "wrong", wait=0), console, on_fatal=stopped.set)
    buffer.put(photo_frame("img4.jpg", datetime.now(UTC)))
    peer.script.append((401, {"error": {"code": "authentication_failed", "message": "Invalid API key."}}, {}))

    delivery.start()
    assert stopped.wait(10)
    assert delivery.fatal == "401 authentication_failed: Invalid API key."
    assert not delivery.close(1) and delivery.unsent == 1
    assert len(peer.requests) == 1  # not hammered with the same bad key


def test_retry_after_as_an_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    response = requests.Response()
    response.headers["Retry-After"] = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= cc.retry_after(response) <= 31


# --- The whole client as a program ---------------------------------------------------


def test_the_client_imports_neither_django_nor_the_service():
    code = (
        "import sys; sys.path.insert(0, 'clients'); import camera_client; "
        "service = {'django', 'apps', 'project', 'celery', 'rest_framework'}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & service))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def client_command(source: Path, api_url: str, key: str, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "clients.camera_client",
        "--source",
        str(source),
        "--api-url",
        api_url,
        "--api-key",
        key,
        *options,
    ]


def test_a_missing_file_or_a_refused_key_exits_with_1(tmp_path, peer):
    missing = subprocess.run(
        client_command(tmp_path / "none.avi", peer.url, "k"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "no such video file" in missing.stderr

    # One frame sampled (2 per second of a 0.2 s video): no second frame can race the 401.
    video = write_video(tmp_path / "door.avi", ["img4.jpg"], seconds_each=0.2)
    peer.script.append((401, {"error": {"code": "authentication_failed", "message": "Invalid API key."}}, {}))
    refused = subprocess.run(
        client_command(video, peer.url, "wrong"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1, refused.stderr
    assert "the API refused the client: 401 authentication_failed" in refused.stderr
    assert summary(refused.stdout)["unsent"] == 1


class Running:
    """The client as a subprocess, its output read as it comes."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as a terminal delivers it: a suite started in the background by a
            # non-interactive shell would pass on its ignored SIGINT, and Python keeps it ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line)

    def said(self, pattern: str) -> list[re.Match]:
        return [m for line in list(self.err) if (m := re.search(pattern, line))]

    def finish(self, timeout: float = 90) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the client did not finish:\n{self.stdout}\n{self.stderr}")
        for reader in self.readers:
            reader.join(5)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


def test_ctrl_c_flushes_the_buffered_frames_and_exits_cleanly(tmp_path, peer):
    video = write_video(tmp_path / "door.avi", ["img4.jpg", "img20.jpg"], seconds_each=1.0)
    peer.down = True
    client = Running(
        client_command(video, peer.url, "k", "--realtime", "--loop", "--wait", "0", "--flush-timeout", "2")
    )
    # Three failed tries: the next one is 4 s away, beyond the 2 s flush timeout. Only
    # the immediate try that Ctrl-C makes can get the frames out in time.
    wait_for(lambda: len(client.said(r"still unreachable")) >= 2, "two retries", timeout=30)
    peer.down = False
    client.process.send_signal(signal.SIGINT)
    code = client.finish(30)

    assert code == 0, client.stderr
    counts = summary(client.stdout)
    left = int(client.said(r"interrupted; sending the (\d+) frames left")[0].group(1))
    assert left >= 2
    assert counts["unsent"] == 0 and counts["dropped"] == 0
    assert counts["sent"] == len(peer.delivered()) == counts["sampled"] - counts["skipped"] >= 2
    assert counts["buffered"] == counts["sent"]
    assert len({r["headers"]["Idempotency-Key"] for r in peer.delivered()}) == counts["sent"]


# --- Against the live application ----------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_client_names_who_is_in_a_video(celery_worker, live_server, make_org, tmp_path):
    from apps.organizations.models import Camera
    from apps.recognition.models import Frame

    organization, key, _ = make_org("door")
    enroll(organization, "id01", "img1.jpg")
    door = Camera.objects.create(organization=organization, name="front door")
    # id01, a stranger (id06), id01 again: a second each, sampled twice a second.
    video = write_video(tmp_path / "door.avi", ["img4.jpg", "img20.jpg", "img2.jpg"], seconds_each=1.0)

    result = subprocess.run(
        client_command(video, live_server.url, key, "--fps", "2", "--camera", str(door.pk), "--wait", "30"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result_lines(result.stdout)
    assert [re.sub(r" \(0\.\d\d\)", "", names) for _, names in lines] == ["id01", "unknown", "id01"], result.stdout
    assert all(float(s) > 0.5 for s in re.findall(r"id01 \((0\.\d\d)\)", result.stdout))
    counts = summary(result.stdout)
    # Six frames sampled; the second of each second showed the same photo and stayed home.
    assert (counts["read"], counts["sampled"], counts["skipped"], counts["sent"]) == (30, 6, 3, 3)
    assert (counts["buffered"], counts["dropped"], counts["unsent"]) == (0, 0, 0)
    frames = list(Frame.objects.filter(organization=organization).order_by("pk"))
    assert [f.camera_id for f in frames] == [door.pk] * 3
    assert [f.status for f in frames] == ["done"] * 3
    assert [to_the_millisecond(f.captured_at) for f in frames] == [when for when, _ in lines]


class Proxy:
    """A TCP forwarder between the client and the live server that can be switched off
    and on again on the same port. Off, nothing listens and open connections are cut:
    to the client that is exactly an API that went down."""

    def __init__(self, upstream_url: str):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self):
        with self.lock:
            sockets, self.connections = [self.listener, *self.connections], []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() or recv()
            except OSError:
                pass
            sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.connections += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_frames_buffered_while_the_api_is_down_arrive_in_order_with_their_capture_times(
    celery_worker, live_server, make_org, tmp_path
):
    from django.utils import timezone

    from apps.recognition.models import Frame

    organization, key, _ = make_org("outage")
    enroll(organization, "id01", "img1.jpg")
    photos = ["img4.jpg", "img20.jpg", "img2.jpg", "img21.jpg", "img5.jpg", "img13.jpg"]  # id01 or not, by turns
    video = write_video(tmp_path / "door.avi", photos, seconds_each=1.0)
    proxy = Proxy(live_server.url)
    proxy.start()
    client = Running(
        client_command(video, proxy.url, key, "--fps", "2", "--realtime", "--retry-max", "1", "--wait", "30")
    )
    try:
        frames = Frame.objects.filter(organization=organization)
        wait_for(lambda: frames.exists(), "the first frame")
        proxy.stop()  # the API goes away mid-run, even under a request in flight
        # Retries every second; three frames waiting means at least two were captured during the outage.
        wait_for(lambda: any(int(m.group(1)) >= 3 for m in client.said(r"(\d+) frames waiting")), "frames to wait")
        back = timezone.now()
        proxy.start()
        code = client.finish(90)
    finally:
        proxy.stop()
        if client.process.poll() is None:
            client.process.kill()

    assert code == 0, client.stderr
    assert "API unreachable" in client.stderr and "API answers again" in client.stderr
    counts = summary(client.stdout)
    assert (counts["sampled"], counts["skipped"], counts["sent"]) == (12, 6, 6)
    assert counts["buffered"] >= 3 and (counts["dropped"], counts["unsent"]) == (0, 0)

    rows = list(frames.order_by("pk"))
    lines = result_lines(client.stdout)
    assert len(rows) == 6  # every frame read and not skipped, and none twice
    assert [to_the_millisecond(f.captured_at) for f in rows] == [when for when, _ in lines]
    assert [re.sub(r" \(0\.\d\d\)", "", names) for _, names in lines] == ["id01", "unknown"] * 3, client.stdout
    # Captured a second of video apart (--realtime: a frame may be read a little late, never
    # early), received in that order, each after its capture.
    gaps = [(b.captured_at - a.captured_at).total_seconds() for a, b in pairwise(rows)]
    assert all(0.5 <= gap < 5 for gap in gaps) and sum(gaps) >= 4.5, gaps
    assert all(f.captured_at < f.received_at for f in rows)
    held = [f for f in rows if f.captured_at < back <= f.received_at]
    assert len(held) >= 2  # captured while the API was away, received after it came back
