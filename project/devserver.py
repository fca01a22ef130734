"""`make run`: the web server and one Celery worker (with the beat that re-queues
lost frames), in the foreground. Ctrl-C stops them all, and the embedded database
and broker too; a second `make run` reuses the data in var/."""

import os
import signal
import subprocess
import sys
import time

from project import embedded, workers


def main() -> int:
    python = sys.executable
    concurrency = os.environ.get("WORKER_CONCURRENCY", "1")
    address = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")
    commands = {
        "web": [python, "manage.py", "runserver", address, "--noreload"],
        "worker": workers.worker_command(concurrency=int(concurrency))
        + ["--beat", "--schedule", str(embedded.VAR_DIR / "celerybeat-schedule")],
    }
    embedded.ensure_services()  # before web and worker, which both need them
    # Own process groups, so that we decide the order of shutdown.
    processes = {name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()}
    print(f"Serving http://{address}/ (admin at /admin/, API at /api/v1/). Ctrl-C stops everything.", flush=True)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
