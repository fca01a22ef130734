"""Real images and videos for the camera client's tests, and `ApiPeer`, a small HTTP
server standing in for the API (a remote peer, scripted to answer 200, 429, 503 or
nothing at all)."""

import email
import email.policy
import http.server
import io
import json
import re
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from clients import camera_client as cc
from project.workers import free_port
from tests.faces import photo

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


def photo_frame(name: str, captured_at: datetime) -> cc.PendingFrame:
    return cc.encode_frame(letterbox(image(name)), captured_at)
