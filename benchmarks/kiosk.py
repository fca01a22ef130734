"""What the presence challenge adds to a check-in: `python -m benchmarks.kiosk [--runs 5] [--out DIR]`.

gunicorn (project/gunicorn.conf.py) and one Celery worker, on the embedded PostgreSQL
(database `faces_kiosk`) and Redis, with the organization's default model and
detector (or --model, --detector). The performer of `hamilton_clip.mp4`, enrolled from
his reference photo, is the person at the kiosk. In each run:

- without a challenge: `POST /api/v1/identify/` of the frame he starts from, what a
  kiosk that only identified would send;
- with it: a check-in started on that frame, then the frame of the clip at each moment
  since (as a live camera shows it, one request in flight), until it passes. He turns
  as the clip does, to his right, or mirrored when the kiosk asks for his left; the
  movement itself takes part of the time, measured apart;
- a still frame of him (his photo held up) until it is refused.

The challenge adds (check-in until passed) − (identify). Writes DIR/kiosk.md and .json.
"""

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import cv2
import requests

from benchmarks.environment import REPO, setup_django

DATABASE = "faces_kiosk"
# His turn to his right, in frames of the clip, from where he faces the camera (yaw
# about 0 from dlib's landmarks, mirrored or not): mirrored, it is a turn to his left.
FIRST, LAST = 96, 135
FACE_X = 228  # his face's centre in frame 96, pixels from the left
SHARED = REPO.parent / "shared" / "datasets"
CLIP = Path(os.environ.get("VIDEOS_DIR", SHARED / "videos")) / "hamilton_clip.mp4"
LIN = (
    Path(os.environ.get("PEOPLE_DIR", SHARED / "people")) / "face_recognition/lin_manuel_miranda/lin-manuel-miranda.png"
)


def clip_frames() -> tuple[dict[str, list[bytes]], float]:
    """The clip's frames as JPEG, as they are ("right") and mirrored ("left"), cut to a
    square with his face in the middle: mirrored, it stays where it was."""
    capture = cv2.VideoCapture(str(CLIP))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = {"right": [], "left": []}
    while len(frames["right"]) <= LAST:
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{CLIP} is missing or short (set VIDEOS_DIR)")
        side = frame.shape[0]
        left = max(0, min(FACE_X - side // 2, frame.shape[1] - side))
        frame = frame[:, left : left + side]
        for direction, pixels in (("right", frame), ("left", cv2.flip(frame, 1))):
            frames[direction].append(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    return frames, fps


def _post(session, url: str, frame: bytes) -> tuple[int, dict]:
    response = session.post(url, files={"image": ("frame.jpg", frame, "image/jpeg")}, timeout=30)
    return response.status_code, response.json()


def check_in(session, url: str, frame_at) -> dict:
    """One check-in: started on frame_at("right", 0), then frame_at(the direction asked,
    seconds since) until it ends."""
    started = time.perf_counter()
    status, answer = _post(session, f"{url}/api/v1/kiosk/check-ins/", frame_at("right", 0.0))
    if status != 201:
        raise SystemExit(f"the check-in did not start: {status} {answer}")
    direction = answer["direction"]
    frames_url, sent, clip_seconds = f"{url}/api/v1/kiosk/check-ins/{answer['id']}/frames/", 1, 0.0
    while answer["outcome"] == "pending":
        clip_seconds = time.perf_counter() - started
        status, answer = _post(session, frames_url, frame_at(direction, clip_seconds))
        sent += 1
    return {
        "direction": direction,
        "outcome": answer["outcome"],
        "reason": answer["reason"],
        "seconds": time.perf_counter() - started,
        "frames": sent,
        # When the frame that settled it was taken: the movement's own part of the time.
        "movement_seconds": clip_seconds,
    }


def run_once(session, url: str, general_key: str, frames: dict[str, list[bytes]], fps: float) -> dict:
    started = time.perf_counter()
    response = session.post(
        f"{url}/api/v1/identify/",
        files={"image": ("frame.jpg", frames["right"][FIRST], "image/jpeg")},
        headers={"Authorization": f"Api-Key {general_key}"},
        timeout=30,
    )
    identify_seconds = time.perf_counter() - started
    names = [face["person"]["name"] for face in response.json()["faces"] if face["person"]]
    passed = check_in(session, url, lambda way, seconds: frames[way][min(FIRST + round(seconds * fps), LAST)])
    refused = check_in(session, url, lambda way, seconds: frames["right"][FIRST])
    return {"identify_seconds": identify_seconds, "identified": names, "passed": passed, "still": refused}


def markdown(report: dict) -> str:
    s = report["summary"]
    return "\n".join(
        [
            f"# Kiosk check-in, with and without the presence challenge ({report['date']})",
            "",
            f"Machine: {report['machine']['cores']} cores; {report['model']} + {report['detector']}, gunicorn and "
            f"one worker; {len(report['runs'])} runs, medians.",
            "",
            "| | seconds |",
            "|---|---|",
            f"| identify one frame (no challenge) | {s['identify_seconds']:.2f} |",
            f"| check-in until passed (head turned as asked) | {s['passed_seconds']:.2f} |",
            f"| of which his movement (when the deciding frame was taken) | {s['movement_seconds']:.2f} |",
            f"| **added by the challenge** | **{s['added_seconds']:.2f}** |",
            f"| a still photo, until refused | {s['still_seconds']:.2f} |",
            "",
            f"Frames per check-in: {s['frames']:.0f} (passed), {s['still_frames']:.0f} (still photo); "
            f"outcomes: {', '.join(sorted(set(s['outcomes'])))}.",
            "",
        ]
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="")
    parser.add_argument("--detector", default="")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "kiosk")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    frames, fps = clip_frames()
    settings = setup_django(args.out, DATABASE, {})
    environment = {**os.environ, **settings}

    from django.core.files.base import ContentFile

    from apps.gallery.models import FaceImage, Person
    from apps.gallery.services import face_image_enroll
    from apps.organizations.models import ApiKey, Camera
    from apps.organizations.services import api_key_create, organization_create
    from apps.sightings.models import CheckIn
    from benchmarks.common import enroll_gallery, machine, write_report
    from project import workers

    organization = organization_create(slug="kiosk", recognition_model=args.model, detector=args.detector)
    camera = Camera.objects.create(organization=organization, name="front door")
    enroll_gallery(organization)
    lin = Person.objects.create(organization=organization, name="Lin-Manuel Miranda")
    photo = FaceImage(organization=organization, person=lin)
    photo.image.save(LIN.name, ContentFile(LIN.read_bytes()), save=False)
    photo.save()
    if face_image_enroll(face_image_id=photo.pk).status != "enrolled":
        raise SystemExit("his reference photo was not enrolled")
    _, general_key = api_key_create(organization=organization)
    _, kiosk_key = api_key_create(organization=organization, scopes=[ApiKey.Scope.KIOSK], camera=camera)
    port = workers.free_port()
    url = f"http://127.0.0.1:{port}"
    with open(args.out / "gunicorn.log", "w") as web_log, open(args.out / "worker.log", "w") as worker_log:
        server = subprocess.Popen(
            workers.web_command(bind=f"127.0.0.1:{port}", processes=1),
            cwd=REPO,
            env=environment,
            stdout=web_log,
            stderr=subprocess.STDOUT,
        )
        worker = workers.start_worker(queue="", node="kiosk@%h", env=environment, stdout=worker_log)
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {kiosk_key}"
        workers.wait_for_web(url, server, args.out / "gunicorn.log")
        run_once(session, url, general_key, frames, fps)  # warm up: models loaded, connections open
        runs = []
        for number in range(args.runs):
            runs.append(run_once(session, url, general_key, frames, fps))
            print(f"run {number + 1}: {runs[-1]}", flush=True)
    finally:
        server.terminate()
        workers.stop_worker(worker)
        server.wait(timeout=30)
    median = statistics.median
    summary = {
        "identify_seconds": median(r["identify_seconds"] for r in runs),
        "passed_seconds": median(r["passed"]["seconds"] for r in runs),
        "movement_seconds": median(r["passed"]["movement_seconds"] for r in runs),
        "still_seconds": median(r["still"]["seconds"] for r in runs),
        "frames": median(r["passed"]["frames"] for r in runs),
        "still_frames": median(r["still"]["frames"] for r in runs),
        "outcomes": [f"{r['passed']['outcome']}/{r['still']['outcome']}" for r in runs],
    }
    summary["added_seconds"] = summary["passed_seconds"] - summary["identify_seconds"]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": organization.recognition_model,
        "detector": organization.detector,
        "check_ins": CheckIn.objects.count(),
        "runs": runs,
        "summary": summary,
    }
    write_report(args.out, "kiosk", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
