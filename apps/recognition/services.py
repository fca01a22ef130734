"""Glue between database rows and the pipeline: frames in, sightings out."""

import logging
import select
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import Conflict, NoFace, QueueFull, ServiceError, WorkerUnavailable
from apps.gallery.models import FaceEmbedding, Person
from apps.recognition import selectors
from apps.recognition.analyzers import analyzer_for, ensure_ready, image_decode
from apps.recognition.models import Calibration, Frame
from apps.recognition.pipeline import calibration, catalog, match, quality
from apps.recognition.pipeline.engine import AnalyzedFace
from apps.recognition.pipeline.images import encode_jpeg
from apps.recognition.recorder import IN_PLACE, Recorder
from apps.recognition.tasks import calibration_scheduled_run_task, frame_process_task, image_analyze_task
from apps.sightings import services as sighting_services
from apps.sightings.models import Correction, Sighting

CANDIDATES_KEPT = 3
logger = logging.getLogger(__name__)


def crop_face(image: np.ndarray, box, margin: float = 0.25, max_side: int = 256) -> bytes:
    """The face with a margin, at most max_side pixels: enough for people to look at."""
    import cv2

    height, width = image.shape[:2]
    dx, dy = int(box.w * margin), int(box.h * margin)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
    crop = image[y0:y1, x0:x1]
    scale = max_side / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(
            crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
    return encode_jpeg(crop, quality=85)


def frame_create(*, organization, data: bytes, camera=None, captured_at=None) -> Frame:
    """Store a valid frame and queue it; bad input raises before anything is stored."""
    ensure_ready(organization)
    image_decode(data)
    unfinished = Frame.objects.filter(
        organization=organization, status__in=[Frame.Status.QUEUED, Frame.Status.PROCESSING]
    ).count()
    if unfinished >= settings.API_MAX_QUEUED_FRAMES:
        raise QueueFull(f"{unfinished} frames of this organization are waiting to be processed; try again shortly.")
    now = timezone.now()
    frame = Frame(organization=organization, camera=camera, captured_at=captured_at or now, received_at=now)
    frame.image.save(f"{uuid.uuid4().hex}.img", ContentFile(data), save=False)
    frame.save()
    frame_enqueue(frame)
    return frame


def frame_enqueue(frame: Frame) -> None:
    frame_id, organization_id = frame.pk, frame.organization_id
    transaction.on_commit(lambda: frame_process_task.delay(frame_id, organization_id=organization_id))


def match_faces(*, organization, embeddings: np.ndarray) -> list[tuple[match.Candidate | None, list[match.Candidate]]]:
    """For each face: the recognized person (or None) and the closest people."""
    results = []
    for embedding in embeddings:
        candidates = selectors.gallery_candidates(
            organization_id=organization.pk,
            model_name=organization.recognition_model,
            embedding=embedding,
            limit=CANDIDATES_KEPT,
        )
        results.append((decide(organization=organization, embedding=embedding, candidates=candidates), candidates))
    return results


def decide(*, organization, embedding: np.ndarray, candidates: list[match.Candidate]) -> match.Candidate | None:
    """match.decide with the organization's threshold, margin and corrections."""
    negatives = selectors.negative_distances(
        organization_id=organization.pk,
        model_name=organization.recognition_model,
        embedding=embedding,
        person_ids=[c.person_id for c in candidates if c.distance <= organization.threshold],
    )
    return match.decide(candidates, organization.threshold, organization.margin, negatives)


def _sighting(*, frame, image, face, measured, embedding, recognized, candidates, names, threshold) -> Sighting:
    nearest = candidates[0] if candidates else None
    sighting = Sighting(
        organization_id=frame.organization_id,
        frame=frame,
        camera=frame.camera,
        seen_at=frame.captured_at,
        person_id=recognized.person_id if recognized else None,
        distance=nearest.distance if nearest else None,
        similarity=match.similarity(nearest.distance, threshold) if nearest else None,
        threshold=threshold,
        model_name=frame.organization.recognition_model,
        matched_face_id=nearest.face_id if nearest else None,
        candidates=[
            {
                "person": {"id": c.person_id, "name": names.get(c.person_id, "")},
                "distance": c.distance,
                "similarity": match.similarity(c.distance, threshold),
            }
            for c in candidates
        ],
        box_x=face.box.x,
        box_y=face.box.y,
        box_w=face.box.w,
        box_h=face.box.h,
        quality=measured.as_dict(),
        quality_score=quality.score(measured),
        embedding=embedding,
    )
    sighting.crop.save(f"{uuid.uuid4().hex}.jpg", ContentFile(crop_face(image, face.box)), save=False)
    return sighting


class Laps:
    """Milliseconds per stage, as a frame's `timings` records them."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.started = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round((now - self.started) * 1000, 1)
        self.started = now


@dataclass
class FrameAnalysis:
    """What the models found in a frame; obtained without the database."""

    image: np.ndarray
    faces: list[AnalyzedFace]
    timings: dict[str, float]

    @property
    def embeddings(self) -> np.ndarray:
        return np.stack([face.embedding for face in self.faces]) if self.faces else np.zeros((0, 0), np.float32)


def frame_process(*, frame_id: int, recorder: Recorder | None = None) -> Frame:
    """Recognize every face of a frame and store one sighting per face.

    The models' part runs here. The database writes (frame_start, frame_record,
    frame_fail) go to the recorder: by default they run at once, in order; the worker's
    recorder runs them on its own thread while the models go on with the next frame
    (recognition.recorder).

    Safe to run twice (a redelivered task): a finished frame is left alone, and a
    later attempt replaces whatever sightings an earlier one left."""
    recorder = recorder or IN_PLACE
    frame = Frame.objects.select_related("organization", "camera").get(pk=frame_id)
    if frame.status in (Frame.Status.DONE, Frame.Status.FAILED):
        return frame
    frame.started_at, frame.attempts = timezone.now(), frame.attempts + 1
    recorder.submit(frame_start, frame=frame)
    try:
        analysis = frame_analyze(frame, models_running=recorder.models_running)
    except Exception as error:  # recorded on the frame: a client polling it must learn why
        recorder.submit(frame_fail, frame=frame, error=error)
        return frame
    recorder.submit(frame_record, frame=frame, analysis=analysis)
    return frame


def frame_start(*, frame: Frame) -> None:
    """Mark the frame processing (frames_requeue_stale looks at started_at), unless
    another delivery finished it meanwhile."""
    Frame.objects.filter(pk=frame.pk, status__in=[Frame.Status.QUEUED, Frame.Status.PROCESSING]).update(
        status=Frame.Status.PROCESSING, started_at=frame.started_at, attempts=frame.attempts
    )
    frame.status = Frame.Status.PROCESSING


def frame_analyze(frame: Frame, models_running) -> FrameAnalysis:
    """Decode, detect and embed; `models_running()` is called as the detector starts."""
    timings = {}
    lap = Laps(timings)
    analyzer = analyzer_for(frame.organization)
    with frame.image.open("rb") as file:
        image = image_decode(file.read())
    lap("decode")
    models_running()
    # Faces below the minimum size cannot be recognized reliably: not reported.
    faces = analyzer.analyze(image, min_face_px=settings.RECOGNITION_MIN_FACE_PX, on_stage=lap)
    return FrameAnalysis(image=image, faces=faces, timings=timings)


def frame_fail(*, frame: Frame, error: Exception) -> Frame:
    logger.error("frame %s failed", frame.pk, exc_info=error)
    code = getattr(error, "code", "processing_failed")
    Frame.objects.filter(pk=frame.pk).update(
        status=Frame.Status.FAILED, finished_at=timezone.now(), error_code=code, error=str(error)[:2000]
    )
    frame.refresh_from_db()
    return frame


def frame_record(*, frame: Frame, analysis: FrameAnalysis) -> Frame:
    """Match the analysed faces and store their sightings with the frame's done status."""
    organization = frame.organization
    lap = Laps(analysis.timings)
    try:
        decisions = match_faces(organization=organization, embeddings=analysis.embeddings)
    except Exception as error:
        return frame_fail(frame=frame, error=error)
    lap("match")
    threshold = organization.threshold
    person_ids = {c.person_id for _, candidates in decisions for c in candidates}
    names = dict(Person.objects.filter(pk__in=person_ids).values_list("pk", "name"))
    sightings = [
        _sighting(
            frame=frame,
            image=analysis.image,
            face=analyzed.face,
            measured=analyzed.quality,
            embedding=analyzed.embedding,
            recognized=recognized,
            candidates=candidates,
            names=names,
            threshold=threshold,
        )
        for analyzed, (recognized, candidates) in zip(analysis.faces, decisions, strict=True)
    ]
    with transaction.atomic():
        # Two deliveries of the same frame may race (a re-queued frame whose first
        # worker was only slow): the row lock lets exactly one of them write.
        if Frame.objects.select_for_update().values_list("status", flat=True).get(pk=frame.pk) == Frame.Status.DONE:
            frame.refresh_from_db()
            return frame
        if frame.attempts > 1:
            # The sightings are stored with the done status, so an interrupted attempt
            # should have left none; a frame set back by hand may still hold some.
            Sighting.objects.filter(frame=frame).delete()
        sighting_services.sightings_record(organization=organization, sightings=sightings)
        lap("write")
        frame.status, frame.finished_at, frame.timings = Frame.Status.DONE, timezone.now(), analysis.timings
        frame.error_code = frame.error = ""
        frame.save(update_fields=["status", "finished_at", "timings", "error_code", "error"])
    return frame


# Where a finished frame is announced (a trigger, migration recognition/0002).
FRAME_DONE_CHANNEL = "frame_done"
# A waiting request looks at its frame this often even without an announcement: a
# safety net (in a transaction, LISTEN only starts at its commit).
FRAME_WAIT_RECHECK_SECONDS = 1.0


def frame_wait(*, frame: Frame, timeout: float) -> Frame:
    """Until the frame is finished or the timeout passes, woken by its announcement."""
    deadline = time.monotonic() + min(timeout, settings.API_MAX_WAIT_SECONDS)
    recheck = 0.05 if connection.in_atomic_block else FRAME_WAIT_RECHECK_SECONDS
    with _listening(FRAME_DONE_CHANNEL) as announced:
        while True:
            frame.refresh_from_db(fields=["status", "finished_at", "timings", "error_code", "error"])
            left = deadline - time.monotonic()
            if frame.status in (Frame.Status.DONE, Frame.Status.FAILED) or left <= 0:
                return frame
            announced(str(frame.pk), min(left, recheck))


@contextmanager
def _listening(channel: str):
    """LISTEN on this request's connection; yields wait(payload, seconds), which returns
    when `payload` is announced on the channel or the seconds have passed."""
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {channel}")
    raw = connection.connection

    def wait(payload: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            select.select([raw], [], [], left)
            raw.poll()
            heard = [notify.payload for notify in raw.notifies]
            raw.notifies.clear()
            if payload in heard:
                return

    try:
        yield wait
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {channel}")
        raw.notifies.clear()


def frames_requeue_stale() -> int:
    """Queue again the frames whose worker died: still 'processing' long after they
    started, or 'queued' for as long (their message was lost with the broker)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RECOGNITION_STALE_FRAME_SECONDS)
    stale = Frame.objects.filter(status=Frame.Status.PROCESSING, started_at__lt=cutoff) | Frame.objects.filter(
        status=Frame.Status.QUEUED, received_at__lt=cutoff
    )
    count = 0
    for frame in stale:
        Frame.objects.filter(pk=frame.pk).update(status=Frame.Status.QUEUED)
        frame_enqueue(frame)
        count += 1
    return count


def calibration_run(*, organization, target_fpir: float | None = None) -> Calibration:
    """Derive the threshold for the organization's target FPIR from its gallery (and
    the model's reference distances), store it with the rates to expect and a plot,
    and use it from now on (unless an explicit threshold overrides it)."""
    target_fpir = organization.fpir_target if target_fpir is None else target_fpir
    if not 0 < target_fpir < 0.5:
        raise ServiceError("The target FPIR must be between 0 and 0.5.", field="target_fpir")
    model_name = organization.recognition_model
    reference = catalog.model_spec(model_name).reference
    if reference is None:
        raise ServiceError(
            f"Model {model_name} has no reference distances yet; its default threshold stays in use.",
            code="not_enough_data",
        )
    rows = list(
        FaceEmbedding.objects.filter(organization=organization, model_name=model_name).values_list(
            "person_id", "embedding"
        )
    )
    owners = np.array([person for person, _ in rows], dtype=np.int64)
    vectors = np.stack([np.asarray(v, dtype=np.float32) for _, v in rows]) if rows else np.zeros((0, 1), np.float32)
    corrections = list(
        Correction.objects.filter(
            organization=organization, from_person__isnull=False, sighting__model_name=model_name
        ).values_list("from_person_id", "sighting__embedding")
    )
    corrected = calibration.correction_distances(
        vectors, owners, [np.asarray(v, dtype=np.float32) for _, v in corrections], [p for p, _ in corrections]
    )
    result = calibration.calibrate_gallery(
        vectors, owners, target_fpir=target_fpir, reference=reference, margin=organization.margin, corrected=corrected
    )
    record = Calibration(
        organization=organization,
        model_name=model_name,
        target_fpir=target_fpir,
        threshold=result.threshold,
        people=result.people,
        photos=result.photos,
        impostor_pairs=result.impostor_pairs,
        source=result.source,
        expected_fpir=result.expected_fpir,
        expected_fnir=result.expected_fnir,
        summary={**result.summary(), "corrections": len(corrected)},
    )
    title = f"{organization.name}: {model_name}, target FPIR {target_fpir:g}"
    with transaction.atomic():
        record.plot.save(f"{uuid.uuid4().hex}.png", ContentFile(calibration.plot_png(result, title)), save=False)
        record.save()
        # Only this field is written: an admin saving the settings page meanwhile keeps theirs.
        organization.calibrated_thresholds = {
            **organization.calibrated_thresholds,
            model_name: round(result.threshold, 6),
        }
        type(organization).objects.filter(pk=organization.pk).update(
            calibrated_thresholds=organization.calibrated_thresholds
        )
    return record


# Enrollments and removals within this many seconds share one calibration.
CALIBRATION_DELAY_SECONDS = 5


def calibration_schedule(*, organization_id: int) -> None:
    """Calibrate again in the background after the gallery changed, once for a burst
    of changes (a bulk import enrolls hundreds of photos): a task is queued only when
    none is already waiting."""
    from django.core.cache import cache

    def queue():
        if cache.add(f"calibration-queued:{organization_id}", 1, timeout=CALIBRATION_DELAY_SECONDS + 60):
            calibration_scheduled_run_task.apply_async(
                kwargs={"organization_id": organization_id}, countdown=CALIBRATION_DELAY_SECONDS
            )

    transaction.on_commit(queue)


def calibration_scheduled_run(*, organization_id: int):
    """The background calibration: lets the next change queue another, then runs."""
    from django.core.cache import cache

    from apps.organizations.models import Organization

    cache.delete(f"calibration-queued:{organization_id}")
    organization = Organization.objects.get(pk=organization_id)
    try:
        return calibration_run(organization=organization)
    except ServiceError as error:
        logger.info("calibration of organization %s skipped: %s", organization_id, error.message)
        return None


# --- The search index -----------------------------------------------------------------

# Session advisory lock key: one build at a time (the beat task and the command may meet).
SEARCH_INDEX_BUILD_LOCK = 0x5EA2C11D


def search_index_build() -> selectors.SearchIndexStatus:
    """(Re)build the IVFFlat search index for today's faces, without blocking
    enrollment or matching: the new index is built concurrently next to the old one,
    which keeps serving until it is swapped out. IVFFlat learns its lists from the
    rows present, so it is built once galleries have grown and rebuilt as they grow
    (SearchIndexStatus.needs_build)."""
    index = selectors.SEARCH_INDEX
    building = f"{index}_new"
    lists = selectors.search_index_status().wanted_lists
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEARCH_INDEX_BUILD_LOCK])
        if not cursor.fetchone()[0]:
            raise Conflict("A search index build is already running.", code="index_build_running")
        try:
            # pgvector refuses to train with less (wanted_lists stays within the budget).
            cursor.execute(f"SET maintenance_work_mem = '{selectors.index_build_memory_mb(lists)}MB'")
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")  # left by an interrupted build
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY {building} ON gallery_faceembedding USING ivfflat "
                f"((embedding::vector({selectors.SEARCH_INDEX_DIMENSIONS})) vector_cosine_ops) "
                f"WITH (lists = {lists}) WHERE dimensions = {selectors.SEARCH_INDEX_DIMENSIONS}"
            )
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
            cursor.execute(f"ALTER INDEX {building} RENAME TO {index}")
            cursor.execute("ANALYZE gallery_faceembedding")
        finally:
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SEARCH_INDEX_BUILD_LOCK])
    selectors.forget_plan_facts()
    return selectors.search_index_status()


def search_index_maintain() -> dict:
    """Build the search index when SearchIndexStatus says so (the daily beat task)."""
    status = selectors.search_index_status()
    if not status.needs_build:
        return {"built": False, "faces": status.faces, "lists": status.lists}
    status = search_index_build()
    return {"built": True, "faces": status.faces, "lists": status.lists}


# --- Synchronous operations: the web process validates and matches, a worker runs the model.


def image_analyze(*, model_name: str, detector: str, data: bytes) -> list[dict]:
    """In a worker: every face of an image with its box, quality and embedding."""
    from apps.recognition.analyzers import analyzer_by_name

    analyzer = analyzer_by_name(model_name, detector)
    image = image_decode(data)
    return [
        {"box": a.face.box.as_dict(), "quality": a.quality.as_dict(), "embedding": a.embedding.tolist()}
        for a in analyzer.analyze(image, min_face_px=settings.RECOGNITION_MIN_FACE_PX)
    ]


def image_analyze_remote(*, organization, data: bytes) -> list[dict]:
    """Validate here, run the model on a worker, wait for the answer."""
    import base64

    from celery.exceptions import TimeoutError as CeleryTimeout

    ensure_ready(organization)
    image_decode(data)
    pending = image_analyze_task.delay(
        organization.recognition_model, organization.detector, base64.b64encode(data).decode()
    )
    try:
        result = pending.get(timeout=settings.API_SYNC_TIMEOUT_SECONDS, propagate=True)
    except CeleryTimeout:
        pending.revoke()
        raise WorkerUnavailable(
            f"No recognition worker answered within {settings.API_SYNC_TIMEOUT_SECONDS:g} s; is a worker running?"
        ) from None
    finally:
        pending.forget()
    return result


def _candidate_dicts(candidates: list[match.Candidate], threshold: float) -> list[dict]:
    names = dict(Person.objects.filter(pk__in=[c.person_id for c in candidates]).values_list("pk", "name"))
    return [
        {
            "person": {"id": c.person_id, "name": names.get(c.person_id, "")},
            "distance": c.distance,
            "similarity": match.similarity(c.distance, threshold),
        }
        for c in candidates
    ]


def identify(*, organization, data: bytes, top_k: int = 3) -> list[dict]:
    """1:K for every face in an image: the recognized person or null, and the top-k."""
    threshold = organization.threshold
    results = []
    for face in image_analyze_remote(organization=organization, data=data):
        candidates = selectors.gallery_candidates(
            organization_id=organization.pk,
            model_name=organization.recognition_model,
            embedding=np.asarray(face["embedding"], dtype=np.float32),
            limit=max(top_k, 2),  # the margin needs the runner-up even when top_k is 1
        )
        recognized = decide(
            organization=organization, embedding=np.asarray(face["embedding"], dtype=np.float32), candidates=candidates
        )
        shown = _candidate_dicts(candidates[:top_k], threshold)
        nearest = candidates[0] if candidates else None
        results.append(
            {
                "box": face["box"],
                "quality": face["quality"],
                "person": next(
                    (c["person"] for c in shown if recognized and c["person"]["id"] == recognized.person_id), None
                ),
                "distance": nearest.distance if nearest else None,
                "similarity": match.similarity(nearest.distance, threshold) if nearest else None,
                "threshold": threshold,
                "candidates": shown,
            }
        )
    return results


def verify(*, organization, data: bytes, person) -> dict:
    """1:1: is the largest face in the image this person?"""
    if not FaceEmbedding.objects.filter(person=person, model_name=organization.recognition_model).exists():
        raise Conflict(
            "This person has no enrolled photo for the organization's model.",
            code="person_not_enrolled",
            field="person",
        )
    faces = image_analyze_remote(organization=organization, data=data)
    if not faces:
        raise NoFace("No face was found in the image.", field="image")
    face = max(faces, key=lambda f: f["box"]["w"] * f["box"]["h"])
    distance = selectors.person_distance(
        person_id=person.pk, model_name=organization.recognition_model, embedding=np.asarray(face["embedding"])
    )
    threshold = organization.threshold
    return {
        "verified": distance <= threshold,
        "distance": distance,
        "similarity": match.similarity(distance, threshold),
        "threshold": threshold,
        "box": face["box"],
        "quality": face["quality"],
    }


def detect(*, organization, data: bytes) -> list[dict]:
    return [
        {"box": f["box"], "quality": f["quality"]} for f in image_analyze_remote(organization=organization, data=data)
    ]
