"""The fault benchmark: `python -m benchmarks.faults [--cameras 8] [--rate 0.4] [--out DIR]`.

Drives the running service from outside as cameras would (real photos, an
Idempotency-Key per frame, retries as the camera client makes them) while its parts
fail, one after another with quiet time between: a worker pool process killed with
SIGKILL mid-frame; the worker stopped and started again; every PostgreSQL connection
of the service terminated; the database restarted; Redis restarted; a burst above the
organization's queue limit. The web server, the worker and beat are processes of
their own on the embedded PostgreSQL (database `faces_faults`) and Redis.

Per phase: frames sent, accepted, lost (accepted but never done or failed), stored
twice, answers by endpoint and status, 503 / 429 answers without Retry-After,
requests that hung past their timeout, latency, and the seconds from the end of the
fault until frames flow again; over the run, the memory of the web and worker
processes. Writes DIR/faults.md and DIR/faults.json.
"""

import argparse
import time
import uuid
from pathlib import Path

from benchmarks.environment import REPO, setup_django

PHASES = (
    "baseline",
    "pool_kill",
    "worker_restart",
    "connections_kill",
    "database_restart",
    "redis_restart",
    "backpressure",
)
DATABASE = "faces_faults"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.4, help="frames per second per camera (default 0.4)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"some of {','.join(PHASES)}")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds of traffic in a phase before its fault")
    parser.add_argument("--quiet", type=float, default=60.0, help="seconds of traffic after each fault")
    parser.add_argument("--queue-limit", type=int, default=30, help="the organization's API_MAX_QUEUED_FRAMES")
    parser.add_argument(
        "--drain", type=float, default=420.0, help="longest wait at the end for accepted frames to finish"
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "faults")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))} (choose from {', '.join(PHASES)})")
    args.out.mkdir(parents=True, exist_ok=True)
    environment = setup_django(args.out, DATABASE, {"API_MAX_QUEUED_FRAMES": str(args.queue_limit)})
    # These import Django's models: only once Django is set up.
    from apps.organizations.services import api_key_create, organization_create
    from benchmarks.common import camera_frames, enroll_gallery, machine, write_report
    from benchmarks.fault_report import figures, markdown
    from benchmarks.fault_stack import Stack
    from benchmarks.fault_traffic import Camera, Log, Watch, burst

    organization = organization_create(slug=f"faults-{uuid.uuid4().hex[:6]}")
    enroll_gallery(organization)
    _, key = api_key_create(organization=organization)
    frames = camera_frames(25)
    stack = Stack(args.out, environment, DATABASE)
    log = Log()
    faults = {
        "baseline": lambda: None,
        "pool_kill": stack.kill_pool_process,
        "worker_restart": stack.restart_worker,
        "connections_kill": stack.terminate_connections,
        "database_restart": stack.restart_database,
        "redis_restart": stack.restart_redis,
        "backpressure": lambda: burst(stack.url, key, frames, 3 * args.queue_limit, log),
    }
    windows = []
    print(f"stack: web {stack.url}, worker and beat on queue {stack.queue}", flush=True)
    stack.start()
    try:
        watch = Watch(stack.url, stack.memory, log)
        watch.start()
        cameras = [
            Camera(f"camera {i + 1}", stack.url, key, frames[i:] + frames[:i], args.rate, log)
            for i in range(args.cameras)
        ]
        for camera in cameras:
            camera.start()
        for name in phases:
            start = time.time()
            time.sleep(args.lead)
            print(f"{name} ...", flush=True)
            fault_start = time.time()
            faults[name]()
            fault_end = time.time()
            time.sleep(args.quiet)
            windows.append({"phase": name, "start": start, "fault_start": fault_start, "fault_end": fault_end})
            windows[-1]["end"] = time.time()
        for camera in cameras:
            camera.stop_capturing()
        for camera in cameras:
            camera.join(timeout=120)
        unsent = sum(len(camera.pending) for camera in cameras)
        drained = wait_for_accepted(log, args.drain)
        watch.stopped.set()
        watch.join()
    finally:
        stack.stop()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": organization.recognition_model,
        "detector": organization.detector,
        "settings": vars(args) | {"out": str(args.out)},
        "drain_s": drained,
        "unsent_at_end": unsent,
        **figures(windows, log.snapshot(), watch.samples, organization),
    }
    write_report(args.out, "faults", report, markdown(report))
    return report


def wait_for_accepted(log, timeout: float) -> float:
    """Until every accepted frame is done or failed (or the timeout): seconds waited."""
    from apps.recognition.models import Frame

    accepted = {a.frame_id for a in log.snapshot() if a.frame_id is not None}
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not Frame.objects.filter(pk__in=accepted).exclude(status__in=["done", "failed"]).exists():
            break
        time.sleep(1.0)
    return time.monotonic() - started


if __name__ == "__main__":
    main()
