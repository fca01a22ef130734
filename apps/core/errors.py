"""Errors that services raise and the API turns into {"error": {...}} with a stable code."""

from django.db import InterfaceError, OperationalError

# What a 503 for a lost database or broker tells clients to wait before trying again.
OUTAGE_RETRY_AFTER_SECONDS = 5

# What a task meets while the database or the broker restarts: retried after a backoff
# (a random wait of at most 1, 2, 4… s), not dropped, which would leave its row waiting
# for the stale sweeps.
OUTAGE_ERRORS = (ConnectionError, OperationalError, InterfaceError)


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field


class NotFound(ServiceError):
    # "Missing" and "another organization's" are the same answer on purpose.
    status = 404
    code = "not_found"


class InvalidImage(ServiceError):
    status = 400
    code = "image_invalid"


class ImageTooLarge(ServiceError):
    status = 413
    code = "image_too_large"


class ModelUnavailable(ServiceError):
    status = 503
    code = "model_unavailable"


class NoFace(ServiceError):
    status = 422
    code = "no_face"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class QueueFull(ServiceError):
    """Backpressure: the organization has too much unprocessed work."""

    status = 429
    code = "queue_full"
    retry_after = 5


class WorkerUnavailable(ServiceError):
    status = 503
    code = "worker_unavailable"
