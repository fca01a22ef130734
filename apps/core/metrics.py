"""The service's own Prometheus metrics, observed where the work happens (web and
worker processes alike). Exposed by project/metrics.py; every metric is listed in the
README ("Metrics"). Under gunicorn or a prefork worker, PROMETHEUS_MULTIPROC_DIR makes
prometheus-client keep each process's values in files that the exposition sums."""

import time
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

FRAME_STAGE_SECONDS = Histogram(
    "faces_frame_stage_seconds",
    "Seconds a frame spent in each stage of recognition (decode, detect, embed, match, write).",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FACES = Counter("faces_faces", "Faces found in processed frames, by whether they were recognized.", ["result"])
FRAMES_FAILED = Counter("faces_frames_failed", "Frames whose processing failed, by error code.", ["code"])
WEBHOOK_ATTEMPTS = Counter(
    "faces_webhook_attempts", "Webhook delivery attempts, by outcome (delivered, retrying, failed).", ["outcome"]
)
TASKS = Counter("faces_celery_tasks", "Celery tasks finished, by task and outcome.", ["task", "outcome"])
MODEL_LOAD_SECONDS = Histogram(
    "faces_model_load_seconds",
    "Seconds to load a recognition model and its detector into a worker process.",
    ["model", "detector"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def frame_recorded(*, timings_ms: dict[str, float], recognized: int, unknown: int) -> None:
    for stage, milliseconds in timings_ms.items():
        FRAME_STAGE_SECONDS.labels(stage=stage).observe(milliseconds / 1000)
    FACES.labels(result="recognized").inc(recognized)
    FACES.labels(result="unknown").inc(unknown)


@contextmanager
def model_loading(*, model: str, detector: str):
    started = time.perf_counter()
    yield
    MODEL_LOAD_SECONDS.labels(model=model, detector=detector).observe(time.perf_counter() - started)
