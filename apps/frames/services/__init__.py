"""The frame services, one module per job; this package's names are their public API."""

from apps.frames.services.calibration import calibration_run, calibration_schedule, calibration_scheduled_run
from apps.frames.services.check_ins import check_in_frame, check_in_start, check_ins_abandoned_sweep
from apps.frames.services.frames import (
    crop_face,
    frame_analyze,
    frame_create,
    frame_enqueue,
    frame_fail,
    frame_process,
    frame_record,
    frame_start,
    frames_requeue_orphaned,
    frames_requeue_stale,
    match_faces,
    recognized_candidate,
)
from apps.frames.services.lookups import detect, identify, image_analyze, image_analyze_remote, verify
from apps.frames.services.waiting import frame_wait

__all__ = [
    "calibration_run",
    "calibration_schedule",
    "calibration_scheduled_run",
    "check_in_frame",
    "check_in_start",
    "check_ins_abandoned_sweep",
    "crop_face",
    "detect",
    "frame_analyze",
    "frame_create",
    "frame_enqueue",
    "frame_fail",
    "frame_process",
    "frame_record",
    "frame_start",
    "frame_wait",
    "frames_requeue_orphaned",
    "frames_requeue_stale",
    "identify",
    "image_analyze",
    "image_analyze_remote",
    "match_faces",
    "recognized_candidate",
    "verify",
]
