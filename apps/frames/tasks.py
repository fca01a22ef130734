"""Thin tasks: each takes ids and calls the service it is named after, imported inside
the function (the services import their tasks at module level)."""

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown
from django.conf import settings

from apps.core.errors import OUTAGE_ERRORS
from apps.frames.recorder import Recorder
from apps.recognition.analyzers import preload

logger = logging.getLogger(__name__)

# Stores each frame's result while the models go on with the next one (recorder.py).
recorder = Recorder(wait_for_models=settings.RECOGNITION_RECORDER_WAIT_SECONDS)


@shared_task(acks_late=True, autoretry_for=OUTAGE_ERRORS, retry_backoff=True, max_retries=5)
def frame_process_task(frame_id: int, organization_id: int | None = None) -> None:
    # organization_id: the tenant context the task runs in (project/celery.py).
    from apps.frames.services import frame_process

    frame_process(frame_id=frame_id, recorder=recorder)


@shared_task(ignore_result=False, acks_late=False)
def image_analyze_task(model_name: str, detector: str, image_base64: str) -> list[dict]:
    # Someone is waiting for the answer: no late ack (a redelivery would come too late).
    import base64

    from apps.frames.services import image_analyze

    return image_analyze(model_name=model_name, detector=detector, data=base64.b64decode(image_base64))


@shared_task
def calibration_scheduled_run_task(organization_id: int) -> float | None:
    # Runs in the organization's tenant context (project/celery.py).
    from apps.frames.services import calibration_scheduled_run

    record = calibration_scheduled_run(organization_id=organization_id)
    return record.threshold if record else None


@shared_task
def frames_requeue_stale_task() -> int:
    from apps.frames.services import frames_requeue_stale

    return frames_requeue_stale()


@shared_task
def check_ins_abandoned_sweep_task() -> int:
    from apps.frames.services import check_ins_abandoned_sweep

    return check_ins_abandoned_sweep()


@worker_process_init.connect
def prepare_process(**kwargs) -> None:
    from apps.frames.services import frames_requeue_orphaned

    # Each pool process loads its models before it takes a task.
    logger.info("models loaded: %s", ", ".join(preload()) or "none ready")
    # One that takes over from a killed process queues again the frames that one held.
    # On the recorder's thread, which opens a database connection of its own: this
    # thread's is still the parent's until Celery's Django fixup, which runs after
    # this, drops it.
    recorder.submit(frames_requeue_orphaned)


@worker_process_shutdown.connect
@worker_shutdown.connect
def flush_recorder(**kwargs) -> None:
    # A pool process that stops normally (warm shutdown, recycling) stores what waits;
    # so does a worker whose tasks run in its main process (the solo pool).
    recorder.flush()


@worker_ready.connect
def recover_frames(**kwargs) -> None:
    # Also where a worker without pool processes (the solo pool) takes over.
    from apps.frames.services import frames_requeue_orphaned, frames_requeue_stale

    count = frames_requeue_stale()
    if count:
        logger.warning("re-queued %s frames left unfinished by a previous worker", count)
    frames_requeue_orphaned()
