"""Camera client: watch a webcam, a network stream or a video file and send frames to the
Faces API, printing who was recognized.

    python -m clients.camera_client --source 0 --api-url http://127.0.0.1:8000 --api-key KEY
    python -m clients.camera_client --source rtsp://10.0.0.7/stream --fps 1 --camera 3
    FACES_API_KEY=KEY python -m clients.camera_client --source door.mp4 --fps 2

(from the folder above clients/; on a camera box with only clients/ copied, run
`python -m camera_client` inside it.)

Frames are sampled at most --fps per second: a camera or stream by the clock, a video
file by its own timestamps (read as fast as it decodes, or at its own pace with
--realtime). A frame's capture time is the wall clock when it was read. Frames that did
not change since the last one sent are skipped (--motion-threshold); the rest are POSTed
to /api/v1/frames/ with their capture time. While the API is unreachable they wait in a
bounded buffer (--buffer; a live source drops the oldest when it is full, a file read
fast waits instead) and go out, oldest first, when it answers again. A camera or stream
that drops is reopened with exponential backoff; the end of a file ends the run.

Output: one line per frame with faces on stdout ("<captured_at> id01 (0.97), unknown"),
notes on stderr, and a summary line at the end. Exit codes: 0 done (end of file, or
Ctrl-C / SIGTERM after flushing the buffer), 1 error (source cannot be opened, the API
refuses the key or camera), 2 bad arguments, 3 frames were left unsent.

Only the standard library, OpenCV, NumPy and requests: no Django, nothing of the service.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import cv2

from .buffer import FrameBuffer, encode_frame
from .console import Console
from .delivery import Delivery, Sender
from .sources import MotionGate, Sampler, Source, SourceError


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    return parse


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clients.camera_client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    option = parser.add_argument
    option("--source", required=True, help="webcam index (0), /dev/videoN, rtsp:// or http(s):// URL, or a video file")
    option(
        "--api-url",
        default=os.environ.get("FACES_API_URL", "http://127.0.0.1:8000"),
        help="base URL of the service (default $FACES_API_URL or http://127.0.0.1:8000)",
    )
    option("--api-key", default=os.environ.get("FACES_API_KEY"), help="API key (default $FACES_API_KEY)")
    option("--camera", type=positive(int), help="id of the organization's camera the frames come from")
    option("--fps", type=positive(float), default=2.0, help="frames sampled per second, at most (default 2)")
    option(
        "--motion-threshold",
        type=non_negative,
        default=3.0,
        help="skip a frame whose mean grey-level change (0-255) since the last frame sent is below this; "
        "0 sends every sampled frame (default 3)",
    )
    option("--buffer", type=positive(int), default=500, help="frames kept while the API is unreachable (default 500)")
    option("--wait", type=non_negative, default=10.0, help="seconds the API may take to give the result (default 10)")
    option("--reconnect-max", type=positive(float), default=30.0, help="longest wait to reopen the source (30 s)")
    option("--retry-max", type=positive(float), default=30.0, help="longest wait to retry the API (default 30 s)")
    option("--loop", action="store_true", help="start a video file over at its end")
    option("--realtime", action="store_true", help="read a video file at its own pace, like a live camera")
    option("--flush-timeout", type=non_negative, default=5.0, help="on Ctrl-C, seconds to send what is left (5)")
    option("--drain-timeout", type=non_negative, default=300.0, help="at the end of a file, the same (300)")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("an API key is needed: --api-key or $FACES_API_KEY")
    if not args.api_url.startswith(("http://", "https://")):
        parser.error(f"--api-url must start with http:// or https://, not {args.api_url}")
    return args


def run(args: argparse.Namespace, console: Console, stop: threading.Event) -> int:
    source = Source(
        args.source, console=console, loop=args.loop, realtime=args.realtime, reconnect_max=args.reconnect_max
    )
    sampler = Sampler(args.fps)
    gate = MotionGate(args.motion_threshold)
    buffer = FrameBuffer(args.buffer)
    sender = Sender(args.api_url, args.api_key, camera=args.camera, wait=args.wait)
    # A refused key or camera ends the run: the reader stops too, even while it waits for room.
    delivery = Delivery(buffer, sender, console, retry_max=args.retry_max, on_fatal=stop.set)
    # A file read faster than real time waits for the API rather than dropping frames; a
    # live source (or a file played like one) cannot wait, so its oldest frames go.
    live = source.live or args.realtime
    error = None
    last_drop_note = 0.0

    delivery.start()
    interrupted = False
    try:
        for reading in source.frames(stop, keep=sampler.take):
            if not gate.admit(reading.image):
                continue
            dropped = buffer.put(encode_frame(reading.image, reading.captured_at), block=not live, stop=stop)
            if dropped is not None and time.monotonic() - last_drop_note > 10:
                last_drop_note = time.monotonic()
                console.note(f"buffer full ({buffer.capacity} frames): dropping the oldest; {buffer.dropped} dropped")
    except SourceError as exc:
        error = str(exc)
        console.note(error)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see main)
        interrupted = True
        stop.set()

    try:
        if error or delivery.fatal:
            delivery.close(0)
        elif interrupted:
            if delivery.unsent:
                console.note(
                    f"interrupted; sending the {delivery.unsent} frames left for at most {args.flush_timeout:g} s "
                    "(Ctrl-C again to quit at once)"
                )
            delivery.close(args.flush_timeout)
        else:
            if delivery.unsent:
                console.note(f"end of {args.source}; sending the {delivery.unsent} frames left")
            delivery.close(args.drain_timeout)
    except KeyboardInterrupt:
        console.note("quitting without sending the rest")

    unsent = delivery.unsent
    console.result(
        f"summary: read {source.read}, sampled {sampler.sampled}, skipped {gate.skipped} (no motion), "
        f"sent {delivery.sent}, buffered {buffer.buffered}, dropped {buffer.dropped}, "
        f"rejected {delivery.rejected}, unsent {unsent}"
    )
    if error or delivery.fatal:
        return 1
    return 3 if unsent else 0


def terminate(signum, frame):
    # SIGTERM (a service manager stopping the client) gets the same clean stop as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C stays Python's KeyboardInterrupt, caught in run(): a signal handler that took
    # locks (to print, or to set an Event) could deadlock against the code it interrupts.
    signal.signal(signal.SIGTERM, terminate)
    # OpenCV warns on every failed open; the client's own notes already say it, once each.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return run(args, Console(), threading.Event())
