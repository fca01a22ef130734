"""gunicorn's settings for the web tier: `make serve`, the container image, the systemd
unit and the fault benchmark all start it with `-c project/gunicorn.conf.py`. Any of
them can be changed on the command line or in GUNICORN_CMD_ARGS."""

import os
import shutil
import tempfile

wsgi_app = "project.wsgi:application"
bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
# Processes (WEB_CONCURRENCY, gunicorn's own variable) and threads in each: a request
# mostly waits on PostgreSQL, Redis or a ?wait= (README, "Web tier capacity").
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
# Idle connections kept longer than a camera's pause between frames: with gunicorn's
# 2 s, a camera's next request raced the server closing its connection, and some went
# unanswered (13 of 470 in the fault benchmark's burst).
keepalive = 75
# Longer than the longest answer the API may wait for on purpose (API_MAX_WAIT_SECONDS).
timeout = 60
graceful_timeout = 30
# Its control socket is one per home directory: two servers on a host would share it.
control_socket_disable = True
accesslog = "-"

# Each process's metrics go to files that /metrics sums (prometheus-client's
# multiprocess mode). Set here, before the application (and prometheus-client) is
# imported by any process; a directory of this server's own unless one is given.
_metrics_dir_made = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir_made = tempfile.mkdtemp(prefix="faces-web-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir_made


def on_starting(server):
    from project.metrics import clear_multiprocess_dir

    clear_multiprocess_dir()  # an earlier run's values would be summed with this one's


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_made:
        shutil.rmtree(_metrics_dir_made, ignore_errors=True)
