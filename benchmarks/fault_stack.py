"""The service as separate processes, as deployed: a web server, one Celery worker and
beat, on the embedded PostgreSQL and Redis; and the faults the fault benchmark makes
them suffer. Imported after django.setup()."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import requests
from django.conf import settings
from django.db import connection

from project import embedded, workers

REPO = Path(__file__).resolve().parent.parent
WEB_PROCESSES = 2


def rss(pid: int | None) -> int:
    """Resident memory of a process and its children (a worker's pool processes)."""
    if pid is None:
        return 0
    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


class Stack:
    def __init__(self, out: Path, environment: dict[str, str], database: str):
        self.out = out
        self.database = database
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            **environment,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
        }
        self.port = workers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = self.worker = self.beat = None

    def _log(self, name: str):
        return open(self.out / f"{name}.log", "a")

    def start(self) -> None:
        # The production web tier: gunicorn with project/gunicorn.conf.py.
        self.web = subprocess.Popen(
            workers.web_command(bind=f"127.0.0.1:{self.port}", processes=WEB_PROCESSES),
            cwd=REPO,
            env=self.env,
            stdout=self._log("web"),
            stderr=subprocess.STDOUT,
        )
        self.start_worker()
        schedule = self.out / "celerybeat-schedule"
        self.beat = subprocess.Popen(
            workers.beat_command(schedule=schedule, loglevel="WARNING"),
            cwd=REPO,
            env=self.env,
            stdout=self._log("beat"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.web.poll() is not None:
                sys.exit(f"The web server did not start; see {self.out / 'web.log'}")
            time.sleep(0.2)

    def start_worker(self) -> None:
        try:
            self.worker = workers.start_worker(
                queue=self.queue, node=f"{self.queue}@%h", env=self.env, stdout=self._log("worker"), loglevel="WARNING"
            )
        except workers.WorkerDidNotStart as error:
            sys.exit(f"The benchmark's worker did not start: {error}; see {self.out / 'worker.log'}")

    def stop(self) -> None:
        if self.worker is not None:
            workers.stop_worker(self.worker, timeout=60)
        for process in (self.beat, self.web):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)

    def memory(self) -> dict[str, int]:
        return {"web": rss(self.web.pid), "worker": rss(self.worker.pid if self.worker else None)}

    # --- Faults: each returns once the fault is over (what was stopped runs again) ----

    def kill_pool_process(self) -> None:
        """SIGKILL the worker's pool process, mid-frame if one is being processed."""
        from apps.recognition.models import Frame

        deadline = time.monotonic() + 10
        while not Frame.objects.filter(status=Frame.Status.PROCESSING).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        children = psutil.Process(self.worker.pid).children()
        if not children:
            sys.exit("The worker has no pool process to kill.")
        os.kill(children[0].pid, signal.SIGKILL)

    def restart_worker(self) -> None:
        """Stop the worker as an operator would (warm shutdown) and start it again."""
        workers.stop_worker(self.worker, timeout=60)
        self.start_worker()

    def terminate_connections(self) -> int:
        """Every connection to the service's database but this process's own."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    def restart_database(self, down_seconds: float = 2.0) -> None:
        connection.close()
        embedded.stop_postgres()
        time.sleep(down_seconds)
        embedded.ensure_postgres(database=self.database)

    def restart_redis(self, down_seconds: float = 2.0) -> None:
        with embedded.redis_stopped():
            time.sleep(down_seconds)
