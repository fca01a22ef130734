"""Printing from two threads, and the wall clock frames are stamped with."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime


class Console:
    """Results on stdout, notes on stderr, whole lines only: two threads print."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()

    def result(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def note(self, message: str) -> None:
        with self._lock:
            print(f"[{datetime.now():%H:%M:%S}] {message}", file=self.err, flush=True)


def now() -> datetime:
    """The wall clock, aware and in local time: the offset keeps it unambiguous."""
    return datetime.now(UTC).astimezone()


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
