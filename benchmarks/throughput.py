"""Pipeline against service: frames per second of the bare pipeline in this process and
of HTTP -> Celery -> database with one worker process, latency below saturation,
worker memory and cold start. Imported after django.setup()."""

import collections
import io
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import requests
from django.conf import settings

from apps.gallery.models import FaceEmbedding
from apps.recognition.models import Frame
from apps.recognition.pipeline import match
from apps.recognition.pipeline.calibration import cosine_distances
from apps.recognition.pipeline.engine import FaceAnalyzer
from apps.recognition.pipeline.images import decode_image
from benchmarks.common import percentile
from benchmarks.environment import REPO
from project import workers
from project.celery import app

STAGES = ["decode", "detect", "embed", "match", "write"]
MODELS = ["decode", "detect", "embed"]  # the service's model thread; match and write run beside it
BETWEEN = "between models"
# Per frame, the time a frame takes on each side's critical path (the service overlaps the rest).
CRITICAL = {"pipeline": ["decode", "detect", "embed", "match"], "service": [*MODELS, BETWEEN]}


class Pipeline:
    """The bare pipeline in this process: decode, detect, embed, match (NumPy, against
    the organization's gallery held in memory), timed by stage."""

    def __init__(self, organization):
        self.analyzer = FaceAnalyzer(
            model_name=organization.recognition_model,
            detector=organization.detector,
            deepface_home=settings.DEEPFACE_HOME,
            detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
            detect_tile_px=settings.RECOGNITION_DETECT_TILE_PX,
            model_threads=settings.RECOGNITION_MODEL_THREADS,
        )
        rows = list(FaceEmbedding.objects.filter(organization=organization).values_list("person_id", "embedding"))
        self.people, self.gallery = [p for p, _ in rows], np.stack([np.asarray(v) for _, v in rows])

    def run(self, data: bytes) -> dict:
        laps = [time.perf_counter()]
        image = decode_image(data, max_bytes=1 << 26, max_pixels=1 << 26)
        laps.append(time.perf_counter())
        analyzed = self.analyzer.analyze(image, on_stage=lambda stage: laps.append(time.perf_counter()))
        for face in analyzed:
            distances = cosine_distances(face.embedding[None], self.gallery)[0]
            match.decide(match.best_per_person(list(zip(self.people, distances, strict=True)), 3), 0.07, 0.1)
        laps.append(time.perf_counter())
        # No write stage: the pipeline stores nothing.
        return {stage: (b - a) * 1000 for stage, a, b in zip(STAGES, laps, laps[1:], strict=False)}

    def measure(self, frames: list[bytes]) -> dict:
        started = time.perf_counter()
        costs = [self.run(data) for data in frames]
        return {"seconds": time.perf_counter() - started, "costs": costs}


def bench_throughput(organization, service, session, frames: list[bytes], rounds: int) -> tuple[dict, dict]:
    """Frames per second of the bare pipeline and of the service, measured in
    alternating rounds over the same frames, so that a machine that slows down or
    speeds up during the run weighs on both alike."""
    pipeline = Pipeline(organization)
    for data in frames[:2]:
        pipeline.run(data)  # warm-up
        post_frame(session, service, data, wait=60)
    measured = {"pipeline": [], "service": []}
    for _ in range(rounds):
        measured["pipeline"].append(pipeline.measure(frames))
        measured["service"].append(service_round(service, session, frames))
    results = []
    for name in ("pipeline", "service"):
        seconds = sum(r["seconds"] for r in measured[name])
        costs = [cost for r in measured[name] for cost in r["costs"]]
        count = rounds * len(frames)
        results.append(
            {
                "frames": count,
                "rounds": rounds,
                "seconds": seconds,
                "fps": count / seconds,
                "round_fps": [len(frames) / r["seconds"] for r in measured[name]],
                "failed": sum(r.get("failed", 0) for r in measured[name]),
                "cost_ms": {key: statistics.mean(cost.get(key, 0.0) for cost in costs) for key in costs[0]},
            }
        )
        if name == "service":  # CPU of each process a frame goes through, per frame
            cpu = collections.Counter()
            for r in measured[name]:
                cpu.update(r["cpu_seconds"])
            results[-1]["cpu_ms"] = {role: 1000 * used / count for role, used in cpu.most_common()}
    return results[0], results[1]


class Service:
    """The real service: the web tier as deployed (gunicorn with project/gunicorn.conf.py,
    one process of WEB_THREADS threads), one Celery worker process on a queue of its
    own, the benchmark database and the broker. The web server's log goes to `log`."""

    def __init__(self, log: Path, concurrency: int = 1, pool: str = "prefork"):
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        app.conf.task_default_queue = self.queue  # where this process's POSTs queue frames
        # The web tier publishes to the worker's queue: Celery reads the default from it.
        self.env = {
            **os.environ,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
        }
        port = workers.free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as output:
            self.web = subprocess.Popen(
                workers.web_command(bind=f"127.0.0.1:{port}", processes=1),
                cwd=REPO,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        workers.wait_for_web(self.url, self.web, log)
        self.concurrency = concurrency
        self.pool = pool
        self.worker = None

    def start_worker(self) -> float:
        """Start the worker; seconds until it answers a ping."""
        started = time.perf_counter()
        try:
            self.worker = workers.start_worker(
                queue=self.queue,
                node=f"{self.queue}@%h",
                env=self.env,
                stdout=subprocess.DEVNULL,
                pool=self.pool,
                concurrency=self.concurrency,
                loglevel="WARNING",
            )
        except workers.WorkerDidNotStart as error:
            sys.exit(f"The benchmark's worker did not start: {error}.")
        return time.perf_counter() - started

    def stop_worker(self) -> None:
        if self.worker is not None:
            workers.stop_worker(self.worker, timeout=60)
            self.worker = None

    def worker_rss(self) -> int:
        process = psutil.Process(self.worker.pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])

    def close(self) -> None:
        self.stop_worker()
        self.web.terminate()
        self.web.wait(timeout=30)


@contextmanager
def running_service(pool: str, key: str, log: Path):
    """The service with its worker started, and an HTTP session that carries the API key."""
    service = Service(log, pool=pool)
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {key}"
    try:
        service.start_worker()
        yield service, session
    finally:
        service.close()


def post_frame(session, service: Service, data: bytes, wait: float = 0) -> dict:
    response = session.post(
        f"{service.url}/api/v1/frames/",
        params={"wait": wait} if wait else None,
        files={"image": ("frame.jpg", io.BytesIO(data), "image/jpeg")},
        timeout=wait + 60,
    )
    response.raise_for_status()
    return response.json()


def wait_done(frame_ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Frame.objects.filter(pk__in=frame_ids).exclude(status__in=["done", "failed"]).exists():
        if time.monotonic() > deadline:
            sys.exit("Frames were not processed in time.")
        time.sleep(0.05)


def cpu_seconds(service: Service) -> collections.Counter:
    """CPU seconds so far of the processes a frame goes through on this machine, by role:
    where the service's time goes when it is bound by the machine rather than a stage."""
    worker_pid = service.worker.pid
    pool = {child.pid for child in psutil.Process(worker_pid).children(recursive=True)}
    web = {service.web.pid} | {child.pid for child in psutil.Process(service.web.pid).children(recursive=True)}
    used = collections.Counter()
    for process in psutil.process_iter(["name"]):
        if process.pid == os.getpid():
            role = "this process (the client)"
        elif process.pid in web:
            role = "web server (gunicorn)"
        elif process.pid == worker_pid:
            role = "Celery's parent"
        elif process.pid in pool:
            role = "worker process (models, recorder)"
        elif (process.info["name"] or "").startswith(("postgres", "redis")):
            role = "PostgreSQL" if process.info["name"].startswith("postgres") else "Redis"
        else:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:  # gone meanwhile (a PostgreSQL backend)
            continue
        used[role] += times.user + times.system
    return used


def service_round(service: Service, session, frames: list[bytes]) -> dict:
    """POST every frame at once and time until the last result. Per frame, the stages the
    worker recorded, and the model thread's time outside them: from the end of one
    frame's models to the start of the next frame (handing the result to the recorder,
    Celery's hand-over, loading the frame; frames are waiting, so it is pure overhead).
    Match and write run on the worker's recorder thread, beside the next frame's models."""
    started, cpu_before = time.time(), cpu_seconds(service)
    ids = [post_frame(session, service, data)["id"] for data in frames]
    wait_done(ids, timeout=60 + 5 * len(frames))
    cpu = cpu_seconds(service)
    cpu.subtract(cpu_before)
    done = list(Frame.objects.filter(pk__in=ids).order_by("started_at"))
    costs = []
    for previous, frame in zip([None, *done], done, strict=False):
        cost = {stage: frame.timings.get(stage, 0.0) for stage in STAGES}
        if previous is not None:
            models_done = previous.started_at.timestamp() + sum(previous.timings.get(s, 0.0) for s in MODELS) / 1000
            cost[BETWEEN] = max(0.0, (frame.started_at.timestamp() - models_done) * 1000)
        costs.append(cost)
    costs[0][BETWEEN] = statistics.mean(c[BETWEEN] for c in costs[1:]) if len(costs) > 1 else 0.0
    return {
        "seconds": max(frame.finished_at.timestamp() for frame in done) - started,
        "costs": costs,
        "failed": sum(frame.status == "failed" for frame in done),
        "cpu_seconds": dict(cpu),
    }


def bench_latency(service: Service, session, frames: list[bytes], rate: float) -> dict:
    """POST with ?wait, one every 1/rate seconds, from parallel clients: POST -> result."""
    latencies, lock = [], threading.Lock()

    def one(data: bytes) -> None:
        with requests.Session() as own:
            own.headers.update(session.headers)
            started = time.perf_counter()
            body = post_frame(own, service, data, wait=60)
            assert body["status"] == "done", body
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = []
    for data in frames:
        thread = threading.Thread(target=one, args=(data,))
        thread.start()
        threads.append(thread)
        time.sleep(1 / rate)
    for thread in threads:
        thread.join()
    return {
        "rate_fps": rate,
        "frames": len(frames),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
    }


def bench_memory(service: Service, session, frames: list[bytes], count: int) -> dict:
    """Worker memory after warm-up, then after `count` more frames (kept 100 ahead)."""
    warm = frames[: min(50, len(frames))]
    wait_done([post_frame(session, service, data)["id"] for data in warm], timeout=600)
    before = service.worker_rss()
    samples, pending, sent = [], [], 0
    while sent < count:
        batch = min(100, count - sent)
        pending = [post_frame(session, service, frames[(sent + i) % len(frames)])["id"] for i in range(batch)]
        wait_done(pending, timeout=120 + 5 * batch)
        sent += batch
        samples.append({"frames": sent, "rss_mb": service.worker_rss() / 2**20})
    after = service.worker_rss()
    return {
        "frames": count,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "growth_percent": 100 * (after - before) / before,
        "samples": samples,
    }


def bench_cold_start(service: Service, session, frame: bytes) -> dict:
    """A fresh worker process: time to its first result (start, load models, one frame)."""
    service.stop_worker()
    started = time.perf_counter()
    answering = service.start_worker()
    post_frame(session, service, frame, wait=120)
    return {"ping_s": answering, "first_result_s": time.perf_counter() - started}
