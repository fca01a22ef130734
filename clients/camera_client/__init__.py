"""Camera client: watch a webcam, a network stream or a video file and send frames to the
Faces API (`python -m clients.camera_client --help`). Only the standard library, OpenCV,
NumPy and requests: no Django, nothing of the service."""

from .buffer import FrameBuffer, PendingFrame, encode_frame
from .cli import main, parse_args, run
from .console import Console, now, stamp
from .delivery import Delivered, Delivery, Fatal, Rejected, RetryLater, Sender, Unreachable, describe, retry_after
from .sources import MotionGate, Reading, Sampler, Source, SourceError, source_kind

__all__ = [
    "Console",
    "Delivered",
    "Delivery",
    "Fatal",
    "FrameBuffer",
    "MotionGate",
    "PendingFrame",
    "Reading",
    "Rejected",
    "RetryLater",
    "Sampler",
    "Sender",
    "Source",
    "SourceError",
    "Unreachable",
    "describe",
    "encode_frame",
    "main",
    "now",
    "parse_args",
    "retry_after",
    "run",
    "source_kind",
    "stamp",
]
