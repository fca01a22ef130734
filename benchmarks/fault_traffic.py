"""What the fault benchmark sends and watches, from outside the service: cameras that
post frames with an Idempotency-Key and retry them as the camera client does, a
burst above the organization's queue limit, a health monitor and a memory sampler.
Every answer is kept as an `Attempt`."""

import collections
import itertools
import threading
import time
import uuid
from dataclasses import dataclass

import requests

RETRIED = {409, 429}  # 409: the same key still in progress; 429: throttled or queue full
REQUEST_TIMEOUT = (5, 20)  # connect, read: a request that takes longer counts as hanging


@dataclass
class Attempt:
    endpoint: str
    sender: str  # "camera 3", "burst", "monitor"
    key: str
    at: float  # time.time() when the request was sent
    seconds: float
    status: int | None  # None: no answer (refused, reset, or the timeout)
    timed_out: bool = False
    retry_after: str | None = None
    frame_id: int | None = None


class Log:
    def __init__(self):
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()

    def add(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def snapshot(self) -> list[Attempt]:
        with self._lock:
            return list(self.attempts)


def post_frame(session, url: str, key: str, data: bytes, log: Log, sender: str) -> Attempt:
    started, at = time.perf_counter(), time.time()
    attempt = Attempt("POST /api/v1/frames/", sender, key, at, 0.0, None)
    try:
        response = session.post(
            f"{url}/api/v1/frames/",
            headers={"Idempotency-Key": key},
            files={"image": ("frame.jpg", data, "image/jpeg")},
            timeout=REQUEST_TIMEOUT,
        )
        attempt.status = response.status_code
        attempt.retry_after = response.headers.get("Retry-After")
        if 200 <= response.status_code < 300:
            attempt.frame_id = response.json()["id"]
    except requests.Timeout:
        attempt.timed_out = True
    except requests.RequestException:
        pass
    attempt.seconds = time.perf_counter() - started
    log.add(attempt)
    return attempt


def wait_before_retry(attempt: Attempt, failures: int) -> float:
    """Retry-After when the answer has one, else 0.5 s doubling up to 5 s."""
    try:
        return min(30.0, float(attempt.retry_after))
    except (TypeError, ValueError):
        return min(5.0, 0.5 * 2 ** min(failures, 4))


class Camera(threading.Thread):
    """Captures a frame every 1/rate seconds into a buffer and sends the buffer oldest
    first, each frame with its own key, retried until the API accepts or refuses it."""

    def __init__(self, name: str, url: str, api_key: str, frames: list[bytes], rate: float, log: Log):
        super().__init__(daemon=True)
        self.name, self.url, self.frames, self.period, self.log = name, url, frames, 1 / rate, log
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Api-Key {api_key}"
        self.capturing = threading.Event()
        self.capturing.set()
        self.pending: collections.deque = collections.deque()

    def run(self) -> None:
        photos = itertools.cycle(self.frames)
        next_capture, retry_at, failures = time.monotonic(), 0.0, 0
        while self.capturing.is_set() or self.pending:
            now = time.monotonic()
            if self.capturing.is_set() and now >= next_capture:
                self.pending.append((uuid.uuid4().hex, next(photos)))
                next_capture += self.period
            if not self.pending or now < retry_at:
                wake = next_capture if self.capturing.is_set() else now + 0.05
                if self.pending:
                    wake = min(wake, retry_at)
                time.sleep(min(0.5, max(0.0, wake - now)))
                continue
            key, data = self.pending[0]
            attempt = post_frame(self.session, self.url, key, data, self.log, self.name)
            if attempt.status is not None and attempt.status not in RETRIED and attempt.status < 500:
                self.pending.popleft()  # accepted, or refused for good
                failures, retry_at = 0, 0.0
            else:
                failures += 1
                retry_at = time.monotonic() + wait_before_retry(attempt, failures)

    def stop_capturing(self) -> None:
        self.capturing.clear()


def burst(url: str, api_key: str, frames: list[bytes], count: int, log: Log) -> None:
    """`count` frames as fast as the API takes them, each retried after its Retry-After."""
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {api_key}"
    for index in range(count):
        key, failures = uuid.uuid4().hex, 0
        while True:
            attempt = post_frame(session, url, key, frames[index % len(frames)], log, "burst")
            if attempt.status is not None and attempt.status not in RETRIED and attempt.status < 500:
                break
            failures += 1
            time.sleep(wait_before_retry(attempt, failures))


class Watch(threading.Thread):
    """GET /healthz every second, and the memory of the web and worker processes every
    `memory_every` seconds."""

    def __init__(self, url: str, memory, log: Log, memory_every: float = 5.0):
        super().__init__(daemon=True)
        self.url, self.memory, self.log, self.memory_every = url, memory, log, memory_every
        self.samples: list[dict] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        last_memory = 0.0
        while not self.stopped.wait(1.0):
            started, at = time.perf_counter(), time.time()
            attempt = Attempt("GET /healthz", "monitor", "", at, 0.0, None)
            try:
                response = requests.get(f"{self.url}/healthz", timeout=REQUEST_TIMEOUT)
                attempt.status, attempt.retry_after = response.status_code, response.headers.get("Retry-After")
            except requests.Timeout:
                attempt.timed_out = True
            except requests.RequestException:
                pass
            attempt.seconds = time.perf_counter() - started
            self.log.add(attempt)
            if time.monotonic() - last_memory >= self.memory_every:
                last_memory = time.monotonic()
                self.samples.append({"at": time.time(), **self.memory()})
