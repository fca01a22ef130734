"""The service's processes in the foreground; Ctrl-C stops them all, and the embedded
database and broker too (a second start reuses the data in var/).

- `make run` (`python -m project.serve`): Django's development server and one Celery
  worker with the beat inside it: the first hour.
- `make serve` (`python -m project.serve --production`): as deployed, with debug off:
  gunicorn (project/gunicorn.conf.py), a worker and the beat as processes of their own.
  The Makefile runs `collectstatic` and `migrate` first.

Against DATABASE_URL and CELERY_BROKER_URL when they are set, the embedded services
otherwise."""

import os
import signal
import subprocess
import sys
import tempfile
import time

from project import embedded, workers


def development() -> dict[str, list[str]]:
    address = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")
    concurrency = int(os.environ.get("WORKER_CONCURRENCY", "1"))
    return {
        "web": [sys.executable, "manage.py", "runserver", address, "--noreload"],
        "worker": workers.worker_command(concurrency=concurrency)
        + ["--beat", "--schedule", str(embedded.VAR_DIR / "celerybeat-schedule")],
    }


def production() -> dict[str, list[str]]:
    concurrency = int(os.environ.get("WORKER_CONCURRENCY", "1"))
    return {
        "web": workers.web_command(bind=os.environ.get("WEB_BIND", "127.0.0.1:8000")),
        "worker": workers.worker_command(concurrency=concurrency),
        "beat": workers.beat_command(schedule=embedded.VAR_DIR / "celerybeat-schedule"),
    }


def main(argv: list[str]) -> int:
    is_production = "--production" in argv
    commands = production() if is_production else development()
    env = dict(os.environ)
    if is_production:
        env["DJANGO_DEBUG"] = "false"
    embedded.ensure_services()  # before web and worker, which both need them
    with tempfile.TemporaryDirectory(prefix="faces-worker-metrics-") as worker_metrics:
        # The worker's pool processes share their metrics through files (project/metrics.py).
        worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": worker_metrics}
        # Own process groups, so that we decide the order of shutdown.
        processes = {
            name: subprocess.Popen(command, env=worker_env if name == "worker" else env, start_new_session=True)
            for name, command in commands.items()
        }
        web = os.environ.get("WEB_BIND" if is_production else "RUN_ADDRESS", "127.0.0.1:8000")
        print(f"Serving http://{web}/ (admin at /admin/, API at /api/v1/). Ctrl-C stops everything.", flush=True)
        return supervise(processes)


def supervise(processes: dict[str, subprocess.Popen]) -> int:
    """Until Ctrl-C, SIGTERM or one of them exits; then all of them, and the embedded services."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in processes.values()):
            time.sleep(0.2)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if not os.environ.get("CELERY_BROKER_URL"):
            embedded.stop_redis()
        if not os.environ.get("DATABASE_URL"):
            embedded.stop_postgres()
        print("Stopped.", flush=True)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
