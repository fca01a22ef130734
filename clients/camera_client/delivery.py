"""Talking to the API: one frame's outcome, and the thread that sends the buffer."""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from .buffer import FrameBuffer, PendingFrame
from .console import Console, stamp

RETRY_AFTER_MAX = 300.0  # never trust a Retry-After to park the client for longer than this


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
