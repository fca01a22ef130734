"""The speed benchmark: `python -m benchmarks.run [--size full|tiny] [--out DIR]`.

It runs in a database of its own (`faces_bench` on the embedded server, or
BENCH_DATABASE_URL), so that its million rows and index rebuilds never touch real data,
and writes DIR/benchmark.md and DIR/benchmark.json. Sections:

- pipeline vs service: frames per second of the bare pipeline in this process, against
  HTTP -> Celery -> database with one worker process; latency at a steady rate below
  saturation; the cost per frame by stage;
- 1:K search for one organization among other organizations' rows (synthetic
  face-like embeddings): the service's path (exact, or its IVFFlat search index) and
  HNSW for comparison, p50 / p95 and recall@1 against exact search;
- against DeepFace's `find` on the same gallery size, probes, model and detector;
- worker memory over many frames after warm-up, and cold start.
"""

import argparse
import io
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SIZES = {
    # frames per round and alternating rounds of pipeline and service, latency frames, memory
    # frames, search sizes, other organizations' rows, HNSW comparison sizes, find sizes, probes
    "tiny": {
        "frames": 4,
        "rounds": 2,
        "latency": 3,
        "memory": 6,
        "search": [100, 500],
        "other_rows": 500,
        "hnsw": [500],
        "find": [200],
        "probes": 20,
        # Small enough that the 500-face gallery goes through the search index.
        "exact_search_max_rows": 200,
    },
    "full": {
        "frames": 26,
        "rounds": 4,
        "latency": 30,
        "memory": 2000,
        "search": [5_000, 10_000, 100_000, 1_000_000],
        "other_rows": 200_000,
        "hnsw": [1_000_000],
        "find": [1_000, 100_000],
        "probes": 200,
    },
}


def setup_django(out: Path, sizes: dict) -> None:
    sys.path.insert(0, str(REPO))
    from project import embedded

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        if os.environ.get("DATABASE_URL"):
            sys.exit("DATABASE_URL is set: give the benchmark its own database with BENCH_DATABASE_URL.")
        url = embedded.ensure_postgres(database="faces_bench")
    os.environ["DATABASE_URL"] = url
    embedded.ensure_services()  # the broker, unless CELERY_BROKER_URL names one
    os.environ["MEDIA_ROOT"] = str(out / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    # The service as deployed: Django's debug mode keeps every query's SQL and times it.
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
    # The benchmark saturates the queue on purpose; backpressure would only stall it.
    os.environ["API_MAX_QUEUED_FRAMES"] = "100000"
    os.environ["API_RATE_PER_KEY"] = "1000000/min"
    os.environ["API_RATE_PER_ORGANIZATION"] = "1000000/min"
    if "exact_search_max_rows" in sizes:
        os.environ["RECOGNITION_EXACT_SEARCH_MAX_ROWS"] = str(sizes["exact_search_max_rows"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    # Each run starts from an empty benchmark database (its rows would skew the next).
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE organizations_organization RESTART IDENTITY CASCADE")


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# --- Frames ---------------------------------------------------------------------------


FACES_DIR = Path(os.environ.get("FACES_DIR", REPO.parent / "shared" / "datasets" / "faces"))


def camera_frames(count: int) -> list[bytes]:
    """The shared photos as a camera would send them: JPEG, long side 640 px."""
    import cv2

    from apps.recognition.pipeline.images import decode_image, encode_jpeg

    files = sorted(FACES_DIR.glob("*.jpg"))
    if not files:
        sys.exit(f"No photos in {FACES_DIR} (set FACES_DIR).")
    frames = []
    for path in files:
        image = decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=1 << 30)
        scale = 640 / max(image.shape[:2])
        small = cv2.resize(
            image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
        frames.append(encode_jpeg(small))
    return [frames[i % len(frames)] for i in range(count)]


def enroll_gallery(organization) -> None:
    """id01 and id03 enrolled in the service's own way, in this process."""
    from django.core.files.base import ContentFile

    from apps.gallery.models import FaceImage, Person
    from apps.gallery.services import face_image_enroll

    for name, files in {"id01": ["img1.jpg", "img2.jpg"], "id03": ["img13.jpg", "img14.jpg"]}.items():
        person = Person.objects.create(organization=organization, name=name)
        for file in files:
            face_image = FaceImage(organization=organization, person=person)
            face_image.image.save(file, ContentFile((FACES_DIR / file).read_bytes()), save=False)
            face_image.save()
            face_image_enroll(face_image_id=face_image.pk)


STAGES = ["decode", "detect", "embed", "match", "write"]
MODELS = ["decode", "detect", "embed"]  # the service's model thread; match and write run beside it
BETWEEN = "between models"
# Per frame, the time a frame takes on each side's critical path (the service overlaps the rest).
CRITICAL = {"pipeline": ["decode", "detect", "embed", "match"], "service": [*MODELS, BETWEEN]}


class Pipeline:
    """The bare pipeline in this process: decode, detect, embed, match (NumPy, against
    the organization's gallery held in memory), timed by stage."""

    def __init__(self, organization):
        from django.conf import settings

        from apps.gallery.models import FaceEmbedding
        from apps.recognition.pipeline.engine import FaceAnalyzer

        self.analyzer = FaceAnalyzer(
            model_name=organization.recognition_model,
            detector=organization.detector,
            deepface_home=settings.DEEPFACE_HOME,
            detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
            model_threads=settings.RECOGNITION_MODEL_THREADS,
        )
        rows = list(FaceEmbedding.objects.filter(organization=organization).values_list("person_id", "embedding"))
        self.people, self.gallery = [p for p, _ in rows], np.stack([np.asarray(v) for _, v in rows])

    def run(self, data: bytes) -> dict:
        from apps.recognition.pipeline import match
        from apps.recognition.pipeline.calibration import cosine_distances
        from apps.recognition.pipeline.images import decode_image

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
    return results[0], results[1]


class Service:
    """The real service: Django over HTTP in a thread of this process, one Celery worker
    process on a queue of its own, the benchmark database and the broker."""

    def __init__(self, concurrency: int = 1, pool: str = "prefork"):
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        from project.celery import app

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        class ThreadingServer(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        app.conf.task_default_queue = self.queue
        self.server = make_server(
            "127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingServer, handler_class=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.concurrency = concurrency
        self.pool = pool
        self.env = {**os.environ, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
        self.worker = None

    def start_worker(self) -> float:
        """Start the worker; seconds until it answers a ping."""
        from project import workers

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
        from project import workers

        if self.worker is not None:
            workers.stop_worker(self.worker, timeout=60)
            self.worker = None

    def worker_rss(self) -> int:
        import psutil

        process = psutil.Process(self.worker.pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])

    def close(self) -> None:
        self.stop_worker()
        self.server.shutdown()


@contextmanager
def running_service(pool: str, key: str):
    """The service with its worker started, and an HTTP session that carries the API key."""
    import requests

    service = Service(pool=pool)
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
    from apps.recognition.models import Frame

    deadline = time.monotonic() + timeout
    while Frame.objects.filter(pk__in=frame_ids).exclude(status__in=["done", "failed"]).exists():
        if time.monotonic() > deadline:
            sys.exit("Frames were not processed in time.")
        time.sleep(0.05)


def service_round(service: Service, session, frames: list[bytes]) -> dict:
    """POST every frame at once and time until the last result. Per frame, the stages the
    worker recorded, and the model thread's time outside them: from the end of one
    frame's models to the start of the next frame (handing the result to the recorder,
    Celery's hand-over, loading the frame; frames are waiting, so it is pure overhead).
    Match and write run on the worker's recorder thread, beside the next frame's models."""
    from apps.recognition.models import Frame

    started = time.time()
    ids = [post_frame(session, service, data)["id"] for data in frames]
    wait_done(ids, timeout=60 + 5 * len(frames))
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
    }


def bench_latency(service: Service, session, frames: list[bytes], rate: float) -> dict:
    """POST with ?wait, one every 1/rate seconds, from parallel clients: POST -> result."""
    import requests

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


# --- 1:K search -----------------------------------------------------------------------


class FaceLikeEmbeddings:
    """Identities as clusters, shaped like the Dlib model's on the shared photos: photos
    of one person about 0.03 apart (cosine), different people about 0.17 apart."""

    def __init__(self, seed: int = 0, dimensions: int = 128):
        self.rng = np.random.default_rng(seed)
        self.dimensions = dimensions
        self.mean = self._unit(self.rng.normal(size=dimensions))

    @staticmethod
    def _unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def identities(self, count: int) -> np.ndarray:
        # Spread around a common direction: real embeddings share one, so impostors are
        # far closer to each other than random vectors (distance ~1) would be.
        return self._unit(self.mean + 0.45 * self._unit(self.rng.normal(size=(count, self.dimensions))))

    def photos(self, centers: np.ndarray) -> np.ndarray:
        return self._unit(centers + 0.18 * self._unit(self.rng.normal(size=centers.shape))).astype(np.float32)


CREATED = "2026-01-01 00:00:00+00"
EMBEDDING_COPY = (
    "COPY gallery_faceembedding (organization_id, face_image_id, person_id, model_name, dimensions, detector, "
    "embedding, box_x, box_y, box_w, box_h, quality, created_at) FROM STDIN"
)


def load_gallery(connection, organization_id: int, vectors: np.ndarray, people: np.ndarray, model: str = "Dlib"):
    """COPY a gallery straight into the production tables (people, photos, embeddings)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('gallery_person_id_seq')")
        first_person = cursor.fetchone()[0]
        person_ids = first_person + np.arange(people.max() + 1)
        cursor.execute("SELECT setval('gallery_person_id_seq', %s)", [int(person_ids[-1])])
        raw = cursor.connection
        with raw.cursor() as copy:
            buffer = io.StringIO(
                "".join(f"{pid}\t{organization_id}\tbench\t\t2026-01-01 00:00:00+00\n" for pid in person_ids)
            )
            copy.copy_expert(
                "COPY gallery_person (id, organization_id, name, external_id, created_at) FROM STDIN", buffer
            )
            cursor.execute("SELECT nextval('gallery_faceimage_id_seq')")
            first_image = cursor.fetchone()[0]
            image_ids = first_image + np.arange(len(vectors))
            cursor.execute("SELECT setval('gallery_faceimage_id_seq', %s)", [int(image_ids[-1])])
            buffer = io.StringIO(
                "".join(
                    f"{iid}\t{organization_id}\t{person_ids[p]}\tbench.jpg\tenrolled\t\t\t[]\t{{}}\t{CREATED}\n"
                    for iid, p in zip(image_ids, people, strict=True)
                )
            )
            copy.copy_expert(
                "COPY gallery_faceimage (id, organization_id, person_id, image, status, reason, detail, warnings, "
                "quality, created_at) FROM STDIN",
                buffer,
            )
            lines = []
            for iid, p, vector in zip(image_ids, people, vectors, strict=True):
                text = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
                lines.append(
                    f"{organization_id}\t{iid}\t{person_ids[p]}\t{model}\t128\tdlib\t{text}\t0\t0\t1\t1\t{{}}\t"
                    "2026-01-01 00:00:00+00\n"
                )
                if len(lines) == 20_000:
                    copy.copy_expert(
                        EMBEDDING_COPY,
                        io.StringIO("".join(lines)),
                    )
                    lines = []
            if lines:
                copy.copy_expert(
                    EMBEDDING_COPY,
                    io.StringIO("".join(lines)),
                )
    # Map back: the person id of every row, for recall against exact search.
    return person_ids[people]


HNSW_INDEX = "bench_hnsw_128"
HNSW_PLAN = "hnsw (comparison)"


def exact_owners(probe_vectors, gallery, owners) -> np.ndarray:
    """The owner of each probe's nearest photo, by exact NumPy search (in chunks: a
    million-photo gallery makes a large distance matrix)."""
    from apps.recognition.pipeline.calibration import cosine_distances

    nearest = [np.argmin(cosine_distances(chunk, gallery), axis=1) for chunk in np.array_split(probe_vectors, 20)]
    return owners[np.concatenate(nearest)]


def search_probe(probe_vectors, expected, search) -> dict:
    """p50 / p95 of `search(vector) -> person ids, best first` and its recall@1 against
    the exact answers. Only the searches run in the timed loop: NumPy's threads busy
    between them would take the cores from the database."""
    for vector in probe_vectors[:5]:
        search(vector)  # warm-up
    latencies, found = [], []
    for vector in probe_vectors:
        started = time.perf_counter()
        found.append(search(vector))
        latencies.append(time.perf_counter() - started)
    hits = sum(bool(people) and people[0] == owner for people, owner in zip(found, expected, strict=True))
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "recall_at_1": hits / len(probe_vectors),
    }


def in_memory(connection) -> None:
    """Read the table and the search index into PostgreSQL's shared buffers, as they are
    in a service that has been running: the benchmark measures search, not a cold
    cache. COPY and sequential scans of a large table go through a small ring of
    buffers, so the table is read through its primary key, and the index by one search
    that visits every list. (A new HNSW index is in the buffers already: its build
    wrote it there.)"""
    from django.conf import settings

    from apps.gallery import search

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SELECT count(person_id) FROM gallery_faceembedding WHERE id > 0")
        cursor.execute("SET enable_sort = off")  # only the search index can give the order
        cursor.execute("SELECT set_config('ivfflat.probes', '32768', false)")
        cursor.execute("SELECT embedding::vector(128) FROM gallery_faceembedding WHERE dimensions = 128 LIMIT 1")
        literal = cursor.fetchone()[0]
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM gallery_faceembedding WHERE dimensions = 128 "
            "ORDER BY (embedding::vector(128)) <=> %s::vector(128) LIMIT 1",
            [literal],
        )
        plan = json.dumps(cursor.fetchone()[0])
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
        cursor.execute("SELECT set_config('ivfflat.probes', %s, false)", [str(settings.RECOGNITION_IVFFLAT_PROBES)])
    if search.SEARCH_INDEX not in plan:
        sys.exit(f"The warm-up did not go through the search index: {plan}")


def bench_search(sizes: list[int], other_rows: int, probes: int, hnsw_sizes: list[int]) -> list[dict]:
    """The service's own search path (exact, or the IVFFlat search index as
    `manage.py search_index` builds it) at each size, with other probe counts beside the
    default; and at `hnsw_sizes` HNSW for comparison (why the service does not use it)."""
    from django.conf import settings
    from django.db import connection

    from apps.core.tenancy import tenant_context
    from apps.gallery import search
    from apps.organizations.services import organization_create
    from apps.recognition.pipeline import match

    faces = FaceLikeEmbeddings(seed=1)
    results = []
    # Other organizations' rows, loaded once: the searched organization is never alone.
    others = organization_create(slug=f"bench-others-{uuid.uuid4().hex[:6]}", recognition_model="Dlib", detector="dlib")
    other_centers = faces.identities(max(1, other_rows // 5))
    other_people = np.repeat(np.arange(len(other_centers)), 5)[:other_rows]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {search.SEARCH_INDEX}")
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")  # left by an interrupted run
    load_gallery(connection, others.pk, faces.photos(other_centers[other_people]), other_people)
    loaded = 0
    organization = organization_create(
        slug=f"bench-search-{uuid.uuid4().hex[:6]}", recognition_model="Dlib", detector="dlib"
    )
    all_vectors, all_person_ids = [], []

    def service_search(vector):
        found = search.gallery_candidates(organization_id=organization.pk, model_name="Dlib", embedding=vector, limit=1)
        return [c.person_id for c in found]

    def hnsw_search(vector):
        literal = "[" + ",".join(f"{x:.8g}" for x in vector) + "]"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT person_id, (embedding::vector(128)) <=> %s::vector(128), face_image_id "
                "FROM gallery_faceembedding WHERE organization_id = %s AND model_name = 'Dlib' AND dimensions = 128 "
                "ORDER BY (embedding::vector(128)) <=> %s::vector(128) LIMIT %s",
                [literal, organization.pk, literal, search.NEIGHBOURS_FETCHED],
            )
            return [c.person_id for c in match.best_per_person(cursor.fetchall(), 1)]

    for size in sizes:
        # Grow the organization's gallery to `size` (5 photos a person), then build the index.
        add = size - loaded
        centers = faces.identities(max(1, add // 5))
        people = np.repeat(np.arange(len(centers)), 5)[:add]
        vectors = faces.photos(centers[people])
        with connection.cursor() as cursor:
            # Loading is faster without a live index to insert into: build it after.
            cursor.execute(f"DROP INDEX IF EXISTS {search.SEARCH_INDEX}")
        person_ids = load_gallery(connection, organization.pk, vectors, people)
        all_vectors.append(vectors)
        all_person_ids.append(person_ids)
        loaded = size
        search.forget_plan_facts()
        with connection.cursor() as cursor:
            # What autovacuum does to freshly loaded rows in a live system, done now rather
            # than in the middle of the measurement.
            cursor.execute("VACUUM ANALYZE gallery_faceembedding")
        started = time.perf_counter()
        status = search.search_index_build()
        build_seconds = time.perf_counter() - started
        in_memory(connection)
        gallery = np.concatenate(all_vectors)
        owners = np.concatenate(all_person_ids)
        # Probes: new photos of enrolled people (the hard case for an index: near, not equal).
        rng = np.random.default_rng(size)
        probe_vectors = faces.photos(gallery[rng.choice(len(gallery), size=probes, replace=False)])
        expected = exact_owners(probe_vectors, gallery, owners)
        plan = "exact" if size <= settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS else "ivfflat"
        row = {"size": size, "other_rows": other_rows, "probes": probes, "index_build_s": build_seconds}
        with tenant_context(organization.pk):
            if plan == "exact":
                results.append(
                    {**row, "plan": plan, "setting": "", **search_probe(probe_vectors, expected, service_search)}
                )
                print(f"  search {size}: {results[-1]}", flush=True)
            else:
                default = settings.RECOGNITION_IVFFLAT_PROBES
                for lists_probed in sorted({default // 2, default, default * 2}):
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('ivfflat.probes', %s, false)", [str(lists_probed)])
                    measured = search_probe(probe_vectors, expected, service_search)
                    results.append(
                        {
                            **row,
                            "plan": "ivfflat",
                            "setting": f"{status.lists} lists, probes {lists_probed}",
                            "default": lists_probed == default,
                            **measured,
                        }
                    )
                    print(f"  search {size}: {results[-1]}", flush=True)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('ivfflat.probes', %s, false)", [str(default)])
            if size in hnsw_sizes:
                # HNSW (pgvector's defaults: m 16, ef_construction 64), alone on the expression.
                with connection.cursor() as cursor:
                    cursor.execute("RESET ROLE")
                    cursor.execute(f"DROP INDEX IF EXISTS {search.SEARCH_INDEX}")
                    cursor.execute("SET maintenance_work_mem = '4GB'")
                    started = time.perf_counter()
                    cursor.execute(
                        f"CREATE INDEX {HNSW_INDEX} ON gallery_faceembedding "
                        "USING hnsw ((embedding::vector(128)) vector_cosine_ops) WHERE dimensions = 128"
                    )
                    hnsw_build = time.perf_counter() - started
                    cursor.execute("ANALYZE gallery_faceembedding")
                    cursor.execute("SET hnsw.iterative_scan = relaxed_order")
                    cursor.execute("SET ROLE faces_tenant")
                for ef_search in (100, 200, 400):
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET hnsw.ef_search = {ef_search}")
                    measured = search_probe(probe_vectors, expected, hnsw_search)
                    results.append(
                        {
                            **row,
                            "index_build_s": hnsw_build,
                            "plan": HNSW_PLAN,
                            "setting": f"m 16, ef_construction 64, ef_search {ef_search}",
                            **measured,
                        }
                    )
                    print(f"  search {size}: {results[-1]}", flush=True)
                with connection.cursor() as cursor:
                    cursor.execute("RESET ROLE")
                    cursor.execute(f"DROP INDEX {HNSW_INDEX}")
    return results


def bench_find(sizes: list[int], probes: list[bytes], organization) -> list[dict]:
    """DeepFace's `find` against this service's identify path on the same gallery size,
    probes, model (Dlib) and detector (dlib). Galleries are precomputed embeddings: for
    DeepFace its own datastore file, for the service the same vectors in pgvector."""
    from deepface import DeepFace
    from deepface.modules import recognition
    from deepface.modules.filestore import build_file_store
    from django.conf import settings
    from django.db import connection

    from apps.core.tenancy import tenant_context
    from apps.gallery import search
    from apps.organizations.services import organization_create
    from apps.recognition.pipeline.engine import FaceAnalyzer
    from apps.recognition.pipeline.images import decode_image

    analyzer = FaceAnalyzer(
        model_name="Dlib",
        detector="dlib",
        deepface_home=settings.DEEPFACE_HOME,
        detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
        model_threads=settings.RECOGNITION_MODEL_THREADS,
    )
    faces = FaceLikeEmbeddings(seed=2)
    results = []
    for size in sizes:
        centers = faces.identities(max(1, size // 5))
        people = np.repeat(np.arange(len(centers)), 5)[:size]
        vectors = faces.photos(centers[people])
        folder = Path(tempfile.mkdtemp(prefix="deepface-find-"))
        store = build_file_store(str(folder))
        representations = [
            {
                "identity": str(folder / f"person{p}" / f"{i}.jpg"),
                "hash": f"{i:040x}",
                "embedding": v.astype(float).tolist(),
                "target_x": 0,
                "target_y": 0,
                "target_w": 150,
                "target_h": 150,
            }
            for i, (p, v) in enumerate(zip(people, vectors, strict=True))
        ]
        name = "ds_model_dlib_detector_dlib_aligned_normalization_base_expand_0.npz"
        getattr(recognition, "__save_representations")(
            store=store, datastore_path=store.join(name), datastore_format="npz", representations=representations
        )
        gallery_org = organization_create(
            slug=f"bench-find-{uuid.uuid4().hex[:6]}", recognition_model="Dlib", detector="dlib"
        )
        with connection.cursor() as cursor:
            # The gallery alone in the table, like DeepFace's datastore; index built after loading.
            cursor.execute("TRUNCATE gallery_person, gallery_faceimage, gallery_faceembedding CASCADE")
            cursor.execute(f"DROP INDEX IF EXISTS {search.SEARCH_INDEX}")
        load_gallery(connection, gallery_org.pk, vectors, people)
        search.search_index_build()
        probe_files = []
        for index, data in enumerate(probes):
            path = folder / f"probe{index}.jpg"
            path.write_bytes(data)
            probe_files.append(path)

        def deepface_find(path, folder=folder):
            DeepFace.find(
                img_path=str(path),
                db_path=str(folder),
                model_name="Dlib",
                detector_backend="dlib",
                distance_metric="cosine",
                refresh_database=False,
                silent=True,
                datastore_format="npz",
            )

        def ours(path, gallery_org=gallery_org):
            image = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26)
            for face in analyzer.analyze(image):
                search.gallery_candidates(
                    organization_id=gallery_org.pk, model_name="Dlib", embedding=face.embedding, limit=3
                )

        timings = {}
        with tenant_context(gallery_org.pk):
            for label, run in (("deepface_find", deepface_find), ("service_pipeline", ours)):
                run(probe_files[0])  # warm-up: models loaded, files cached
                started = time.perf_counter()
                for path in probe_files:
                    run(path)
                timings[label] = (time.perf_counter() - started) / len(probe_files)
        results.append(
            {
                "gallery": size,
                "probes": len(probe_files),
                "deepface_find_s": timings["deepface_find"],
                "service_s": timings["service_pipeline"],
                "speedup": timings["deepface_find"] / timings["service_pipeline"],
            }
        )
        print(f"  find {size}: {results[-1]}", flush=True)
    return results


# --- Report ---------------------------------------------------------------------------


def machine() -> dict:
    import psutil

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Benchmark ({report['size']}, {report['date']})",
        "",
        f"Machine: {report['machine']['cores']} cores, {report['machine']['memory_gb']} GB, "
        f"{report['machine']['os']}, Python {report['machine']['python']}; "
        f"{report.get('model', 'Dlib')} model, {report.get('detector', 'dlib')} detector, "
        "640-px JPEG frames from ../shared/datasets/faces.",
        "",
    ]
    # A report made by --sections alone may lack some sections: each is written if measured.
    if "pipeline" in report:
        lines += _throughput_markdown(report)
    if "search" in report:
        lines += _search_markdown(report)
    if "find" in report:
        lines += _find_markdown(report)
    if "memory" in report:
        lines += _worker_markdown(report)
    return "\n".join(lines)


def _throughput_markdown(report: dict) -> list[str]:
    pipeline, service = report["pipeline"], report["service"]
    lines = [
        "## Service vs its own pipeline (1 worker process)",
        "",
        f"{pipeline['rounds']} alternating rounds of {pipeline['frames'] // pipeline['rounds']} frames each.",
        "",
        "| | frames | seconds | frames/s | per round |",
        "|---|---|---|---|---|",
    ]
    for label, side in (("bare pipeline, one process", pipeline), ("HTTP → Celery → database", service)):
        rounds = ", ".join(f"{fps:.2f}" for fps in side["round_fps"])
        lines.append(f"| {label} | {side['frames']} | {side['seconds']:.1f} | {side['fps']:.2f} | {rounds} |")
    lines += [
        "",
        f"The service delivers **{100 * service['fps'] / pipeline['fps']:.1f} %** of the bare pipeline's rate.",
        "",
    ]
    latency = report["latency"]
    lines += [
        "## Latency, POST to result",
        "",
        f"At {latency['rate_fps']:.2f} frames/s ({latency['frames']} frames): "
        f"p50 **{latency['p50_ms']:.0f} ms**, p95 **{latency['p95_ms']:.0f} ms**.",
        "",
    ]
    columns = list(service["cost_ms"])
    lines += [
        "## Cost per frame (mean, ms)",
        "",
        "Stages as each side timed them. The service's worker runs decode, detect and embed on its "
        "model thread, and match and write on its recorder thread beside the next frame's models; "
        f"*{BETWEEN}* is the model thread's time outside its stages (handing the result to the recorder, "
        "Celery's hand-over to the next task, loading that frame). *critical path*: the stages a frame "
        "waits for on each side.",
        "",
        "| | " + " | ".join(columns) + " | critical path |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for side, label in (("pipeline", "bare pipeline"), ("service", "service worker")):
        costs = report[side]["cost_ms"]
        cells = [f"{costs[c]:.1f}" if c in costs else "–" for c in columns]
        critical = sum(costs.get(c, 0.0) for c in CRITICAL[side])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {critical:.1f} |")
    lines.append("")
    return lines


def _search_markdown(report: dict) -> list[str]:
    lines = [
        "## 1:K search (one organization among others' rows)",
        "",
        "The service's own path (exact, or the IVFFlat search index); **bold**: its default setting. "
        "HNSW rows are the comparison that made the choice.",
        "",
        "| embeddings | other orgs' rows | search | setting | p50 ms | p95 ms | recall@1 | index build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["search"]:
        setting = f"**{row['setting']}**" if row.get("default") else row.get("setting", "")
        lines.append(
            f"| {row['size']:,} | {row['other_rows']:,} | {row['plan']} | {setting} | {row['p50_ms']:.2f} | "
            f"{row['p95_ms']:.2f} | {row['recall_at_1']:.3f} | {row['index_build_s']:.0f} |"
        )
    lines.append("")
    return lines


def _find_markdown(report: dict) -> list[str]:
    lines = [
        "## Against DeepFace's find (time per probe, detection and embedding included)",
        "",
        "| gallery photos | probes | DeepFace find s | this service s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for row in report["find"]:
        lines.append(
            f"| {row['gallery']:,} | {row['probes']} | {row['deepface_find_s']:.3f} | {row['service_s']:.3f} | "
            f"{row['speedup']:.1f}× |"
        )
    lines.append("")
    return lines


def _worker_markdown(report: dict) -> list[str]:
    memory, cold = report["memory"], report["cold_start"]
    return [
        "## Worker",
        "",
        f"Memory over {memory['frames']} frames after warm-up: {memory['rss_before_mb']:.0f} MB → "
        f"{memory['rss_after_mb']:.0f} MB (**{memory['growth_percent']:+.1f} %**).",
        "",
        f"Cold start: the worker answers after {cold['ping_s']:.1f} s; first result after "
        f"**{cold['first_result_s']:.1f} s**.",
        "",
    ]


def rerun_sections(args, sizes, report, organization, key: str) -> dict:
    """Measure some sections again and merge them into the report already in OUT."""

    existing = args.out / "benchmark.json"
    # With no report in OUT yet, the sections measured now make a new one.
    previous = json.loads(existing.read_text()) if existing.exists() else dict(report)
    # One model and detector per report: merged sections of another would be mislabelled.
    measured = (previous.get("model", report["model"]), previous.get("detector", report["detector"]))
    if measured != (report["model"], report["detector"]):
        sys.exit(
            f"{existing} measured {measured[0]} + {measured[1]}; this run measures "
            f"{report['model']} + {report['detector']}: give it another --out."
        )
    for section in args.sections.split(","):
        if section == "search":
            only = [int(x) for x in args.search_sizes.split(",")] if args.search_sizes else sizes["search"]
            hnsw = sizes["hnsw"] if args.hnsw_sizes is None else [int(x) for x in args.hnsw_sizes.split(",") if x]
            fresh = bench_search(only, sizes["other_rows"], sizes["probes"], hnsw)
            # Rows of other sizes stay, and HNSW comparison rows that were not measured again.
            kept = [
                row
                for row in previous.get("search", [])
                if row["size"] not in only or (row["plan"] == HNSW_PLAN and row["size"] not in hnsw)
            ]
            previous["search"] = sorted(kept + fresh, key=lambda row: (row["size"], row["plan"] == HNSW_PLAN))
        elif section == "throughput":
            # Pipeline and service again, in one run (e.g. with another --worker-pool), and latency.
            with running_service(args.worker_pool, key) as (service, session):
                previous["pipeline"], previous["service"] = bench_throughput(
                    organization, service, session, camera_frames(sizes["frames"]), sizes["rounds"]
                )
                previous["latency"] = bench_latency(
                    service, session, camera_frames(sizes["latency"]), 0.5 * previous["service"]["fps"]
                )
            previous["worker_pool"] = args.worker_pool
        elif section == "worker":
            # Memory over many frames and cold start, with a fresh worker.
            with running_service(args.worker_pool, key) as (service, session):
                previous["memory"] = bench_memory(service, session, camera_frames(sizes["frames"]), sizes["memory"])
                previous["cold_start"] = bench_cold_start(service, session, camera_frames(1)[0])
        elif section == "find":
            previous["find"] = bench_find(sizes["find"], camera_frames(10 if args.size == "full" else 2), organization)
        else:
            sys.exit(f"Unknown section {section!r}")
    previous.update(date=report["date"], model=report["model"], detector=report["detector"])
    (args.out / "benchmark.json").write_text(json.dumps(previous, indent=2))
    (args.out / "benchmark.md").write_text(markdown(previous))
    print(markdown(previous))
    return previous


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "benchmark")
    parser.add_argument(
        "--sections",
        default="all",
        help="all, or some of throughput,search,find,worker (comma-separated): rerun those into OUT's report",
    )
    parser.add_argument(
        "--worker-pool", choices=["prefork", "solo"], default="prefork", help="Celery pool of the one worker process"
    )
    parser.add_argument("--model", default="", help="model of the measured organization (default: a new one's)")
    parser.add_argument("--detector", default="", help="its detector (default: a new organization's)")
    parser.add_argument(
        "--hnsw-sizes",
        help="with --sections search: sizes to build HNSW at for comparison (comma-separated; empty: none)",
    )
    parser.add_argument(
        "--search-sizes",
        help="with --sections search: only these sizes (comma-separated), replacing their rows in OUT's report",
    )
    args = parser.parse_args(argv)
    sizes = SIZES[args.size]
    args.out.mkdir(parents=True, exist_ok=True)
    setup_django(args.out, sizes)

    from apps.organizations.services import api_key_create, organization_create

    organization = organization_create(
        slug=f"bench-{uuid.uuid4().hex[:6]}", recognition_model=args.model, detector=args.detector
    )
    enroll_gallery(organization)
    _, key = api_key_create(organization=organization)
    frames = camera_frames(sizes["frames"])
    report = {
        "size": args.size,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": organization.recognition_model,
        "detector": organization.detector,
    }
    if args.sections != "all":
        return rerun_sections(args, sizes, report, organization, key)

    def done(section: str, value) -> None:
        report[section] = value
        print(f"  {section}: {json.dumps(value)}", flush=True)
        (args.out / "benchmark.partial.json").write_text(json.dumps(report, indent=2))

    with running_service(args.worker_pool, key) as (service, session):
        print("pipeline and service ...", flush=True)
        pipeline_fps, service_fps = bench_throughput(organization, service, session, frames, sizes["rounds"])
        done("pipeline", pipeline_fps)
        done("service", service_fps)
        print("latency ...", flush=True)
        done(
            "latency", bench_latency(service, session, camera_frames(sizes["latency"]), 0.5 * report["service"]["fps"])
        )
        print("memory ...", flush=True)
        done("memory", bench_memory(service, session, frames, sizes["memory"]))
        print("cold start ...", flush=True)
        done("cold_start", bench_cold_start(service, session, frames[0]))
    print("search ...", flush=True)
    done("search", bench_search(sizes["search"], sizes["other_rows"], sizes["probes"], sizes["hnsw"]))
    print("find ...", flush=True)
    done("find", bench_find(sizes["find"], camera_frames(10 if args.size == "full" else 2), organization))
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2))
    (args.out / "benchmark.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
