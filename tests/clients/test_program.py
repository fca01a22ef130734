"""The camera client as a program: its exit codes and Ctrl-C, then as a subprocess
against the live application with a real Celery worker: it names id01 and a stranger
from a video, and its frames survive an API outage, through a TCP proxy of the test's
own that is switched off mid-run and on again."""

import re
import signal
import socket
import subprocess
import sys
import threading
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.clients.helpers import free_port, result_lines, summary, to_the_millisecond, write_video
from tests.conftest import REPO
from tests.worker import enroll, wait_for

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
    assert [re.sub(r" \([01]\.\d\d\)", "", names) for _, names in lines] == ["id01", "unknown", "id01"], result.stdout
    assert all(float(s) > 0.5 for s in re.findall(r"id01 \(([01]\.\d\d)\)", result.stdout))
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
    assert [re.sub(r" \([01]\.\d\d\)", "", names) for _, names in lines] == ["id01", "unknown"] * 3, client.stdout
    # Captured a second of video apart (--realtime: a frame may be read a little late, never
    # early), received in that order, each after its capture.
    gaps = [(b.captured_at - a.captured_at).total_seconds() for a, b in pairwise(rows)]
    assert all(0.5 <= gap < 5 for gap in gaps) and sum(gaps) >= 4.5, gaps
    assert all(f.captured_at < f.received_at for f in rows)
    held = [f for f in rows if f.captured_at < back <= f.received_at]
    assert len(held) >= 2  # captured while the API was away, received after it came back
