"""A webhook receiver of the tests' own: a local HTTP endpoint that records what it is sent."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """An HTTP endpoint of the test's own. `fail` answers that many 500s per path first."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                failures = receiver.fail.get(self.path, 0)
                if failures:
                    receiver.fail[self.path] = failures - 1
                self.send_response(500 if failures else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def wait(self, path: str, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received(path)) >= count:
                return self.received(path)
            time.sleep(0.05)
        pytest.fail(f"{path}: {len(self.received(path))} of {count} requests after {timeout} s")


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
