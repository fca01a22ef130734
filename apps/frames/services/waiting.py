"""A request that waits for its frame's result: woken by PostgreSQL's announcement
(LISTEN / NOTIFY) rather than by polling."""

import select
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from apps.recognition.models import Frame

# Where a finished frame is announced (a trigger, migration recognition/0002).
FRAME_DONE_CHANNEL = "frame_done"
# A waiting request looks at its frame this often even without an announcement: a
# safety net (in a transaction, LISTEN only starts at its commit).
FRAME_WAIT_RECHECK_SECONDS = 1.0
# Between attempts to reach a database that dropped the connection.
RECONNECT_PAUSE_SECONDS = 0.5


def frame_wait(*, frame: Frame, timeout: float) -> Frame:
    """Until the frame is finished or the timeout passes, woken by its announcement.

    A connection the database dropped (terminated, or the server restarted) is opened
    again and the wait goes on; only if the database is still gone at the deadline does
    the error reach the caller. The frame is stored either way: the wait is a courtesy."""
    deadline = time.monotonic() + min(timeout, settings.API_MAX_WAIT_SECONDS)
    while True:
        try:
            return _wait_listening(frame, deadline)
        except (OperationalError, InterfaceError):
            left = deadline - time.monotonic()
            if connection.in_atomic_block or left <= 0:
                raise
            connection.close()  # the next query opens a new connection
            time.sleep(min(left, RECONNECT_PAUSE_SECONDS))


def _wait_listening(frame: Frame, deadline: float) -> Frame:
    recheck = 0.05 if connection.in_atomic_block else FRAME_WAIT_RECHECK_SECONDS
    with _listening(FRAME_DONE_CHANNEL) as announced:
        while True:
            frame.refresh_from_db(fields=["status", "finished_at", "timings", "error_code", "error"])
            left = deadline - time.monotonic()
            if frame.status in (Frame.Status.DONE, Frame.Status.FAILED) or left <= 0:
                return frame
            announced(str(frame.pk), min(left, recheck))


@contextmanager
def _listening(channel: str):
    """LISTEN on this request's connection; yields wait(payload, seconds), which returns
    when `payload` is announced on the channel or the seconds have passed."""
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {channel}")
    raw = connection.connection

    def wait(payload: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            # As Django's own cursors do: a lost connection raises django.db's errors
            # and is marked unusable.
            with connection.wrap_database_errors:
                select.select([raw], [], [], left)
                raw.poll()
            heard = [notify.payload for notify in raw.notifies]
            raw.notifies.clear()
            if payload in heard:
                return

    try:
        yield wait
    except (OperationalError, InterfaceError):
        raise  # the connection is gone, and its LISTEN with it
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {channel}")
    finally:
        raw.notifies.clear()
