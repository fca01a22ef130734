"""Camera client: watch a webcam, a network stream or a video file and send frames to the
Faces API, printing who was recognized.

    python clients/camera_client.py --source 0 --api-url http://127.0.0.1:8000 --api-key KEY
    python clients/camera_client.py --source rtsp://10.0.0.7/stream --fps 1 --camera 3
    FACES_API_KEY=KEY python clients/camera_client.py --source door.mp4 --fps 2

Frames are sampled at most --fps per second: a camera or stream by the clock, a video
file by its own timestamps (read as fast as it decodes, or at its own pace with
--realtime). A frame's capture time is the wall clock when it was read. Frames that did
not change since the last one sent are skipped (--motion-threshold); the rest are POSTed
to /api/v1/frames/ with their capture time. While the API is unreachable they wait in a
bounded buffer (--buffer; a live source drops the oldest when it is full, a file read
fast waits instead) and go out, oldest first, when it answers again. A camera or stream
that drops is reopened with exponential backoff; the end of a file ends the run.

Output: one line per frame with faces on stdout ("<captured_at> id01 (0.97), unknown"),
notes on stderr, and a summary line at the end. Exit codes: 0 done (end of file, or
Ctrl-C / SIGTERM after flushing the buffer), 1 error (source cannot be opened, the API
refuses the key or camera), 2 bad arguments, 3 frames were left unsent.

Only the standard library, OpenCV, NumPy and requests: no Django, nothing of the service.
"""

from __future__ import annotations

import argparse
import collections
import email.utils
import os
import signal
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np
import requests

JPEG_QUALITY = 90
STREAM_TIMEOUT_MS = 10_000  # a stalled stream counts as dropped after this, instead of FFmpeg's 30 s
RETRY_AFTER_MAX = 300.0  # never trust a Retry-After to park the client for longer than this


class Console:
    """Results on stdout, notes on stderr, whole lines only: two threads print."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()

    def result(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def note(self, message: str) -> None:
        with self._lock:
            print(f"[{datetime.now():%H:%M:%S}] {message}", file=self.err, flush=True)


def now() -> datetime:
    """The wall clock, aware and in local time: the offset keeps it unambiguous."""
    return datetime.now(UTC).astimezone()


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


# --- Reading the source --------------------------------------------------------------


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


# --- Buffering -----------------------------------------------------------------------


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


# --- Talking to the API --------------------------------------------------------------


@dataclass
class Delivered:
    body: dict


@dataclass
class Rejected:  # the API looked at this frame and refused it: sending it again would not help
    reason: str


@dataclass
class RetryLater:  # the API is there but asks to wait (429 throttled or queue_full, 409 in progress)
    seconds: float
    reason: str


@dataclass
class Unreachable:  # no answer, or a 5xx: keep the frame and try again with backoff
    reason: str


@dataclass
class Fatal:  # every frame would meet the same answer (bad key, missing scope, unknown camera)
    reason: str


Outcome = Delivered | Rejected | RetryLater | Unreachable | Fatal


def retry_after(response: requests.Response, default: float = 1.0) -> float:
    value = response.headers.get("Retry-After", "").strip()
    seconds = default
    if value.replace(".", "", 1).isdigit():
        seconds = float(value)
    elif value:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            pass
    return min(max(seconds, 0.1), RETRY_AFTER_MAX)


def network_error(error: requests.RequestException) -> str:
    """'ConnectionError: [Errno 111] Connection refused' rather than three nested reprs."""
    root: BaseException = error
    while True:
        inner = getattr(root, "reason", None) or root.__cause__ or root.__context__
        if not isinstance(inner, BaseException) or inner is root:
            break
        root = inner
    return f"{type(error).__name__}: {root}"


def api_error(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = response.text[:200].strip() or response.reason
    return f"{response.status_code} {text}"


class Sender:
    """POSTs one frame to /api/v1/frames/ and says what became of it: the only piece that
    talks to the API. The HTTP session is injectable (proxies, certificates, tests)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        camera: int | None = None,
        wait: float = 10.0,
        connect_timeout: float = 5.0,
        session: requests.Session | None = None,
    ):
        self.url = api_url.rstrip("/") + "/api/v1/frames/"
        self.camera = camera
        self.wait = wait
        # The API may take `wait` seconds to answer on purpose; only beyond that is it lost.
        self.timeout = (connect_timeout, wait + 30)
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Api-Key {api_key}", "User-Agent": "faces-camera-client/1"})

    def send(self, frame: PendingFrame) -> Outcome:
        data = {"captured_at": frame.captured_at.isoformat()}
        if self.camera is not None:
            data["camera"] = str(self.camera)
        try:
            response = self.session.post(
                self.url,
                params={"wait": f"{self.wait:g}"},  # the same text on every retry: it is part of the idempotency check
                data=data,
                files={"image": ("frame.jpg", frame.jpeg, "image/jpeg")},
                headers={"Idempotency-Key": frame.key},
                timeout=self.timeout,
                allow_redirects=False,  # a redirected POST turns into a GET; better to say so
            )
        except requests.RequestException as error:
            return Unreachable(network_error(error))
        return self.classify(response)

    @staticmethod
    def classify(response: requests.Response) -> Outcome:
        status = response.status_code
        if status in (200, 202):
            try:
                return Delivered(response.json())
            except ValueError:
                return Fatal(f"{status} without JSON from {response.url}: is --api-url the Faces API?")
        if status == 429:
            return RetryLater(retry_after(response), api_error(response))
        if status == 409 and "idempotency_in_progress" in response.text:
            return RetryLater(1.0, api_error(response))  # our earlier attempt is still being processed
        if status >= 500:
            return Unreachable(api_error(response))
        if status in (401, 403, 404) or 300 <= status < 400:
            where = f" (redirected to {response.headers['Location']})" if "Location" in response.headers else ""
            return Fatal(api_error(response) + where)
        return Rejected(api_error(response))


def describe(frame: PendingFrame, body: dict) -> tuple[str, str] | None:
    """The line to print for an answered frame, and where ("out" or "err"); None for a
    frame that was processed and had no face."""
    when = stamp(frame.captured_at)
    status = body.get("status")
    if status == "done":
        faces = body.get("faces") or []
        if not faces:
            return None
        names = [
            f"{face['person']['name']} ({face['similarity']:.2f})" if face.get("person") else "unknown"
            for face in faces
        ]
        return "out", f"{when} {', '.join(names)}"
    if status == "failed":
        error = body.get("error") or {}
        return "err", f"{when} frame {body.get('id')} failed: {error.get('code')}: {error.get('message')}"
    return "out", f"{when} accepted as frame {body.get('id')} ({status}); result at {body.get('url')}"


class Delivery:
    """Sends the buffered frames, oldest first, on a thread of its own so that reading the
    camera never waits for the network.

    API unreachable: the frame goes back to the head of the buffer and the next try comes
    after 1 s, 2 s, 4 s ... up to `retry_max`; 429: after Retry-After. A 4xx refusal
    costs only that frame. 401, 403 and 404 stop everything (`fatal`)."""

    def __init__(
        self,
        buffer: FrameBuffer,
        sender: Sender,
        console: Console,
        *,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        on_fatal: Callable[[], None] = lambda: None,
    ):
        self.buffer = buffer
        self.on_fatal = on_fatal
        self.sender = sender
        self.console = console
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.backoff = retry_initial
        self.unreachable = False
        self.sent = 0
        self.rejected = 0
        self.fatal: str | None = None
        self.in_flight: PendingFrame | None = None
        self._closing = threading.Event()  # no more frames will come: stop once the buffer is empty
        self._halted = threading.Event()  # stop now, whatever is left
        self._wake = threading.Event()  # cut a pause short: closing deserves one immediate try
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)

    @property
    def unsent(self) -> int:
        return len(self.buffer) + (self.in_flight is not None)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None) -> bool:
        """Send what is left for at most `timeout` seconds; True if everything went."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        self._halted.set()
        return not self._thread.is_alive() and self.unsent == 0

    def _run(self) -> None:
        try:
            while not self._halted.is_set() and self.fatal is None:
                pause = self.step(timeout=0.2)
                if pause is None:
                    if self._closing.is_set() and len(self.buffer) == 0:
                        return
                elif pause > 0:
                    self._wake.wait(pause)
                    self._wake.clear()
        except Exception as error:  # a bug here must stop the reader too, not leave it filling the buffer
            self.fatal = f"{type(error).__name__}: {error}"
            self.console.note(f"delivery failed: {self.fatal}")
        finally:
            if self.fatal:
                self.on_fatal()

    def step(self, timeout: float = 0.0) -> float | None:
        """Try to send the oldest frame. Returns None when there was none, else how many
        seconds to pause before the next try (0: go on at once)."""
        frame = self.buffer.pop_oldest(timeout)
        if frame is None:
            return None
        self.in_flight = frame
        try:
            outcome = self.sender.send(frame)
        except Exception:
            self.buffer.requeue(frame)  # a bug must not eat the frame
            raise
        else:
            return self._handle(frame, outcome)
        finally:
            self.in_flight = None  # after the frame is back in the buffer, so that it is always counted

    def _handle(self, frame: PendingFrame, outcome: Outcome) -> float | None:
        if isinstance(outcome, Unreachable):
            return self._unreachable(frame, outcome.reason)
        if isinstance(outcome, RetryLater):
            self._reachable()
            self.buffer.requeue(frame)
            self.console.note(f"the API asks to wait ({outcome.reason}); retrying in {outcome.seconds:g} s")
            return outcome.seconds
        if isinstance(outcome, Fatal):
            self.buffer.requeue(frame)
            self.fatal = outcome.reason
            self.console.note(f"the API refused the client: {outcome.reason}; stopping")
            return None
        self._reachable()
        if isinstance(outcome, Rejected):
            self.rejected += 1
            self.console.note(f"frame captured at {stamp(frame.captured_at)} refused: {outcome.reason}")
            return 0.0
        self.sent += 1
        line = describe(frame, outcome.body)
        if line is not None:
            (self.console.result if line[0] == "out" else self.console.note)(line[1])
        return 0.0

    def _unreachable(self, frame: PendingFrame, reason: str) -> float:
        self.buffer.hold(True)
        if self.buffer.requeue(frame) is not None:
            self.console.note("the buffer is full: dropped the oldest frame")
        pause = self.backoff
        self.backoff = min(self.backoff * 2, self.retry_max)
        waiting = len(self.buffer)
        if not self.unreachable:
            self.unreachable = True
            self.console.note(f"API unreachable ({reason}); buffering frames; {waiting} waiting, retry in {pause:g} s")
        else:
            self.console.note(f"API still unreachable ({reason}); {waiting} frames waiting, retry in {pause:g} s")
        return pause

    def _reachable(self) -> None:
        self.backoff = self.retry_initial
        if self.unreachable:
            self.unreachable = False
            self.buffer.hold(False)
            self.console.note(f"API answers again; sending {len(self.buffer)} buffered frames")


# --- The whole client ----------------------------------------------------------------


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    return parse


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="camera_client.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    option = parser.add_argument
    option("--source", required=True, help="webcam index (0), /dev/videoN, rtsp:// or http(s):// URL, or a video file")
    option(
        "--api-url",
        default=os.environ.get("FACES_API_URL", "http://127.0.0.1:8000"),
        help="base URL of the service (default $FACES_API_URL or http://127.0.0.1:8000)",
    )
    option("--api-key", default=os.environ.get("FACES_API_KEY"), help="API key (default $FACES_API_KEY)")
    option("--camera", type=positive(int), help="id of the organization's camera the frames come from")
    option("--fps", type=positive(float), default=2.0, help="frames sampled per second, at most (default 2)")
    option(
        "--motion-threshold",
        type=non_negative,
        default=3.0,
        help="skip a frame whose mean grey-level change (0-255) since the last frame sent is below this; "
        "0 sends every sampled frame (default 3)",
    )
    option("--buffer", type=positive(int), default=500, help="frames kept while the API is unreachable (default 500)")
    option("--wait", type=non_negative, default=10.0, help="seconds the API may take to give the result (default 10)")
    option("--reconnect-max", type=positive(float), default=30.0, help="longest wait to reopen the source (30 s)")
    option("--retry-max", type=positive(float), default=30.0, help="longest wait to retry the API (default 30 s)")
    option("--loop", action="store_true", help="start a video file over at its end")
    option("--realtime", action="store_true", help="read a video file at its own pace, like a live camera")
    option("--flush-timeout", type=non_negative, default=5.0, help="on Ctrl-C, seconds to send what is left (5)")
    option("--drain-timeout", type=non_negative, default=300.0, help="at the end of a file, the same (300)")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("an API key is needed: --api-key or $FACES_API_KEY")
    if not args.api_url.startswith(("http://", "https://")):
        parser.error(f"--api-url must start with http:// or https://, not {args.api_url}")
    return args


def run(args: argparse.Namespace, console: Console, stop: threading.Event) -> int:
    source = Source(
        args.source, console=console, loop=args.loop, realtime=args.realtime, reconnect_max=args.reconnect_max
    )
    sampler = Sampler(args.fps)
    gate = MotionGate(args.motion_threshold)
    buffer = FrameBuffer(args.buffer)
    sender = Sender(args.api_url, args.api_key, camera=args.camera, wait=args.wait)
    # A refused key or camera ends the run: the reader stops too, even while it waits for room.
    delivery = Delivery(buffer, sender, console, retry_max=args.retry_max, on_fatal=stop.set)
    # A file read faster than real time waits for the API rather than dropping frames; a
    # live source (or a file played like one) cannot wait, so its oldest frames go.
    live = source.live or args.realtime
    error = None
    last_drop_note = 0.0

    delivery.start()
    interrupted = False
    try:
        for reading in source.frames(stop, keep=sampler.take):
            if not gate.admit(reading.image):
                continue
            dropped = buffer.put(encode_frame(reading.image, reading.captured_at), block=not live, stop=stop)
            if dropped is not None and time.monotonic() - last_drop_note > 10:
                last_drop_note = time.monotonic()
                console.note(f"buffer full ({buffer.capacity} frames): dropping the oldest; {buffer.dropped} dropped")
    except SourceError as exc:
        error = str(exc)
        console.note(error)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see main)
        interrupted = True
        stop.set()

    try:
        if error or delivery.fatal:
            delivery.close(0)
        elif interrupted:
            if delivery.unsent:
                console.note(
                    f"interrupted; sending the {delivery.unsent} frames left for at most {args.flush_timeout:g} s "
                    "(Ctrl-C again to quit at once)"
                )
            delivery.close(args.flush_timeout)
        else:
            if delivery.unsent:
                console.note(f"end of {args.source}; sending the {delivery.unsent} frames left")
            delivery.close(args.drain_timeout)
    except KeyboardInterrupt:
        console.note("quitting without sending the rest")

    unsent = delivery.unsent
    console.result(
        f"summary: read {source.read}, sampled {sampler.sampled}, skipped {gate.skipped} (no motion), "
        f"sent {delivery.sent}, buffered {buffer.buffered}, dropped {buffer.dropped}, "
        f"rejected {delivery.rejected}, unsent {unsent}"
    )
    if error or delivery.fatal:
        return 1
    return 3 if unsent else 0


def terminate(signum, frame):
    # SIGTERM (a service manager stopping the client) gets the same clean stop as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C stays Python's KeyboardInterrupt, caught in run(): a signal handler that took
    # locks (to print, or to set an Event) could deadlock against the code it interrupts.
    signal.signal(signal.SIGTERM, terminate)
    # OpenCV warns on every failed open; the client's own notes already say it, once each.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return run(args, Console(), threading.Event())


if __name__ == "__main__":
    sys.exit(main())
