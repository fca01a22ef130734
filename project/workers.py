"""The commands of the service's processes (web, worker, beat), and starting a Celery
worker from Python: the one way for `make run` and `make serve` (project.serve), the
tests and the benchmarks."""

import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a process of ours to take."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_web(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Return once the web server at `url` answers /healthz (whatever it says about the
    services behind it); exit naming its log if it stops or does not answer in time."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the web server did not start; see {log}") from None
            time.sleep(0.2)


class WorkerDidNotStart(RuntimeError):
    pass


def web_command(*, bind: str, processes: int | None = None) -> list[str]:
    """gunicorn with project/gunicorn.conf.py; `processes` overrides WEB_CONCURRENCY."""
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "project" / "gunicorn.conf.py"), "--bind", bind]
    return command + (["--workers", str(processes)] if processes else [])


def beat_command(*, schedule: Path, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "project",
        "beat",
        "--schedule",
        str(schedule),
        f"--loglevel={loglevel}",
    ]


WORKER_START_OPTIONS = ["--without-mingle", "--without-gossip"]


def worker_command(*, pool: str = "prefork", concurrency: int = 1, queue: str = "", node: str = "", loglevel="INFO"):
    """`celery -A project worker` with these options (an empty queue or node: Celery's)."""
    command = [sys.executable, "-m", "celery", "-A", "project", "worker", f"--pool={pool}"]
    command += [f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    # Mingle waits a second at start for other workers' revoked tasks (only an identify
    # whose caller gave up, harmless to run), gossip follows every other worker's events,
    # which nothing here reads: without them a worker answers 1.4 s sooner (3.4 -> 1.9 s).
    command += WORKER_START_OPTIONS
    if queue:
        command += ["-Q", queue]
    if node:
        command += ["-n", node]
    return command


def start_worker(
    *,
    queue: str,
    node: str,
    env: dict,
    stdout,
    pool: str = "prefork",
    concurrency: int = 1,
    loglevel: str = "INFO",
    timeout: float = 120,
) -> subprocess.Popen:
    """A worker serving `queue` as `node` (`name@%h`); returns once it answers a ping."""
    from project.celery import app

    command = worker_command(pool=pool, concurrency=concurrency, queue=queue, node=node, loglevel=loglevel)
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=subprocess.STDOUT)
    name = node.split("@")[0] + "@"
    deadline = time.monotonic() + timeout
    while not any(reply_name.startswith(name) for reply in app.control.ping(timeout=0.2) for reply_name in reply):
        if process.poll() is not None:
            raise WorkerDidNotStart(f"the celery worker exited with {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise WorkerDidNotStart(f"the celery worker did not answer within {timeout:.0f} s")
    return process


def stop_worker(process: subprocess.Popen, timeout: float = 30) -> None:
    process.terminate()  # a warm shutdown: the task at hand is finished first
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
