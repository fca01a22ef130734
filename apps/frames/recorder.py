"""The worker's recorder: a thread that stores each frame's result (matching, crops and
the database writes: services.frame_start, frame_record, frame_fail) while the models
go on with the next frame.

The recorder's PostgreSQL work runs beside the models on another core; its Python
runs wherever the model thread leaves the interpreter free (README, "Speed, measured").

With `wait_for_models` (RECOGNITION_RECORDER_WAIT_SECONDS) above 0, a result waits
until the models have started on the next frame (models_running), or that long when
no frame follows. That paid off with dlib's HOG detector, which releases the GIL for
about 100 ms a frame; BlazeFace takes 6 ms, and dlib's face descriptor holds the GIL,
so waiting only pushed the writes into the descriptor's time (the service's rate:
85-88 % of the bare pipeline's with 20 ms, 90-91 % with 0, the default).

At most `backlog` results wait: submit blocks behind them, so the models never run far
ahead of the database. The frame's task returns, and its message is acknowledged, before
its result is stored. A pool process killed in between leaves the frame `processing`:
the process that replaces it queues it again as it starts (frames_requeue_orphaned),
and frames_requeue_stale after RECOGNITION_STALE_FRAME_SECONDS if no process of that
machine takes over; a worker that stops normally stores what waits first
(tasks.flush_recorder)."""

import itertools
import logging
import queue
import threading
from contextlib import nullcontext

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from apps.core.tenancy import current_organization_id, tenant_context

logger = logging.getLogger(__name__)


class Recorder:
    def __init__(self, *, wait_for_models: float, backlog: int = 2):
        self._jobs = queue.Queue(maxsize=backlog)
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._models_running = threading.Event()
        self._wait_for_models = wait_for_models

    def submit(self, function, /, **kwargs) -> None:
        """Run function(**kwargs) on the recorder's thread, in the caller's tenant context."""
        self._ensure_thread()
        self._models_running.clear()
        self._jobs.put((function, kwargs, current_organization_id()))

    def models_running(self) -> None:
        """The model thread has started on a frame's detection (dlib's HOG detector and
        ONNX Runtime release the GIL)."""
        self._models_running.set()

    def flush(self) -> None:
        """Store everything submitted now (no frame follows), and wait until it is."""
        if self._thread is not None:
            self._models_running.set()
            self._jobs.join()

    def _ensure_thread(self) -> None:
        # Started by the first submit, in the process that uses it: a worker's pool
        # processes are forked, and threads do not survive a fork.
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            self._models_running.wait(self._wait_for_models)
            while True:  # and what has come meanwhile
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run_batch(batch)
            except Exception:  # the database is away: the frames stay `processing`, to be queued again
                logger.exception("the recorder could not store %s results", len(batch))
            finally:
                for _ in batch:
                    self._jobs.task_done()

    def _run_batch(self, batch: list) -> None:
        # What Django does around a request: drop a connection that broke or aged.
        close_old_connections()
        for organization_id, jobs in itertools.groupby(batch, key=lambda job: job[2]):
            with nullcontext() if organization_id is None else tenant_context(organization_id):
                for function, kwargs, _ in jobs:
                    _run_job(function, kwargs)


def _run_job(function, kwargs: dict) -> None:
    """One result stored, tried a second time on a new connection if PostgreSQL dropped
    the one it used (a terminated backend, a restart): each job writes in one
    transaction and checks whether its frame is done already, so a second try is safe,
    and it saves the frame a wait for the stale-frame sweep (minutes)."""
    name = getattr(function, "__name__", function)
    for attempt in (1, 2):
        try:
            function(**kwargs)
            return
        except (InterfaceError, OperationalError):
            if attempt == 2:
                logger.exception("the recorder failed to run %s", name)  # its frame stays `processing`
                return
            logger.warning("the database connection broke while running %s; trying again on a new one", name)
            connection.close()  # the next query opens one, given the tenant context
        except Exception:  # its frame stays `processing`, to be queued again
            logger.exception("the recorder failed to run %s", name)
            return


class ImmediateRecorder:
    """Runs each job at once, in the caller's thread (frame_process outside a worker)."""

    def submit(self, function, /, **kwargs) -> None:
        function(**kwargs)

    def models_running(self) -> None:
        pass


IMMEDIATE = ImmediateRecorder()
