"""A frame's life: stored and queued, analyzed by a worker, matched against the
gallery, recorded as sightings (or failed), and queued again when its worker died."""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import kombu.exceptions
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import QueueFull
from apps.frames.recorder import IMMEDIATE, Recorder
from apps.frames.tasks import frame_process_task
from apps.gallery import search
from apps.gallery.models import Person
from apps.recognition.analyzers import analyzer_for, image_decode, require_organization_model
from apps.recognition.models import Frame
from apps.recognition.pipeline import match, quality
from apps.recognition.pipeline.engine import AnalyzedFace
from apps.recognition.pipeline.images import encode_jpeg
from apps.sightings import services as sighting_services
from apps.sightings.models import Sighting

logger = logging.getLogger(__name__)

CANDIDATES_KEPT = 3


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
    require_organization_model(organization)
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

    def publish() -> None:
        try:
            frame_process_task.delay(frame_id, organization_id=organization_id)
        except kombu.exceptions.OperationalError as error:
            # The frame is stored, so it is not lost: the stale-frame sweep queues it again
            # once the broker is back. Failing the request instead would make the client
            # send it again, and store it twice.
            logger.warning("frame %s stored but not queued (the broker is not answering): %s", frame_id, error)

    transaction.on_commit(publish)


def match_faces(*, organization, embeddings: np.ndarray) -> list[tuple[match.Candidate | None, list[match.Candidate]]]:
    """For each face: the recognized person (or None) and the closest people."""
    results = []
    for embedding in embeddings:
        candidates = search.gallery_candidates(
            organization_id=organization.pk,
            model_name=organization.recognition_model,
            embedding=embedding,
            limit=CANDIDATES_KEPT,
        )
        results.append(
            (recognized_candidate(organization=organization, embedding=embedding, candidates=candidates), candidates)
        )
    return results


def recognized_candidate(
    *, organization, embedding: np.ndarray, candidates: list[match.Candidate]
) -> match.Candidate | None:
    """match.decide with the organization's threshold, margin and corrections."""
    negatives = search.negative_distances(
        organization_id=organization.pk,
        model_name=organization.recognition_model,
        embedding=embedding,
        person_ids=[c.person_id for c in candidates if c.distance <= organization.threshold],
    )
    return match.decide(candidates, organization.threshold, organization.margin, negatives)


def candidate_rows(candidates: list[match.Candidate], *, threshold: float, names: dict[int, str]) -> list[dict]:
    """The nearest people as a sighting stores them and the API shows them."""
    return [
        {
            "person": {"id": c.person_id, "name": names.get(c.person_id, "")},
            "distance": c.distance,
            "similarity": match.similarity(c.distance, threshold),
        }
        for c in candidates
    ]


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
        candidates=candidate_rows(candidates, threshold=threshold, names=names),
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


class StageTimer:
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


def frame_process(*, frame_id: int, recorder: Recorder | None = None) -> Frame | None:
    """Recognize every face of a frame and store one sighting per face.

    The models' part runs here. The database writes (frame_start, frame_record,
    frame_fail) go to the recorder: by default they run at once, in order; the worker's
    recorder runs them on its own thread while the models go on with the next frame
    (recognition.recorder).

    Safe to run twice (a redelivered task): a finished frame is left alone, and a
    later attempt replaces whatever sightings an earlier one left. A frame deleted
    before its turn (a person's erasure, a purge) is skipped."""
    recorder = recorder or IMMEDIATE
    frame = Frame.objects.select_related("organization", "camera").filter(pk=frame_id).first()
    if frame is None:
        logger.info("frame %s was deleted before it was processed", frame_id)
        return None
    if frame.status in (Frame.Status.DONE, Frame.Status.FAILED):
        return frame
    frame.started_at, frame.attempts, frame.worker = timezone.now(), frame.attempts + 1, this_process()
    recorder.submit(frame_start, frame=frame)
    try:
        analysis = frame_analyze(frame, models_running=recorder.models_running)
    except Exception as error:  # recorded on the frame: a client polling it must learn why
        recorder.submit(frame_fail, frame=frame, error=error)
        return frame
    recorder.submit(frame_record, frame=frame, analysis=analysis)
    return frame


def this_process() -> str:
    """The process, as a frame's `worker` names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def frame_start(*, frame: Frame) -> None:
    """Mark the frame processing, by which process and since when (the requeue sweeps
    below look at both), unless another delivery finished it meanwhile."""
    Frame.objects.filter(pk=frame.pk, status__in=[Frame.Status.QUEUED, Frame.Status.PROCESSING]).update(
        status=Frame.Status.PROCESSING, started_at=frame.started_at, attempts=frame.attempts, worker=frame.worker
    )
    frame.status = Frame.Status.PROCESSING


def frame_analyze(frame: Frame, models_running) -> FrameAnalysis:
    """Decode, detect and embed; `models_running()` is called as the detector starts."""
    timings = {}
    lap = StageTimer(timings)
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
    metrics.FRAMES_FAILED.labels(code=code).inc()
    Frame.objects.filter(pk=frame.pk).update(
        status=Frame.Status.FAILED, finished_at=timezone.now(), error_code=code, error=str(error)[:2000]
    )
    frame.refresh_from_db()
    return frame


def frame_record(*, frame: Frame, analysis: FrameAnalysis) -> Frame:
    """Match the analysed faces and store their sightings with the frame's done status."""
    organization = frame.organization
    lap = StageTimer(analysis.timings)
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
    try:
        with transaction.atomic():
            # Two deliveries of the same frame may race (a re-queued frame whose first
            # worker was only slow): the row lock lets exactly one of them write.
            status = Frame.objects.select_for_update().values_list("status", flat=True).get(pk=frame.pk)
            if status == Frame.Status.DONE:
                _delete_crops(sightings)  # the other delivery's are the ones kept
                frame.refresh_from_db()
                return frame
            _store_sightings(frame=frame, sightings=sightings, analysis=analysis, lap=lap)
    except BaseException:
        _delete_crops(sightings)  # written before the rows that would have named them
        raise
    recognized = sum(sighting.person_id is not None for sighting in sightings)
    metrics.frame_recorded(timings_ms=frame.timings, recognized=recognized, unknown=len(sightings) - recognized)
    return frame


def _delete_crops(sightings: list[Sighting]) -> None:
    for sighting in sightings:
        if sighting.crop:
            sighting.crop.storage.delete(sighting.crop.name)


def _store_sightings(*, frame: Frame, sightings: list[Sighting], analysis: FrameAnalysis, lap: StageTimer) -> None:
    if frame.attempts > 1:
        # The sightings are stored with the done status, so an interrupted attempt
        # should have left none; a frame set back by hand may still hold some.
        Sighting.objects.filter(frame=frame).delete()
    sighting_services.sightings_record(organization=frame.organization, sightings=sightings)
    lap("write")
    frame.status, frame.finished_at, frame.timings = Frame.Status.DONE, timezone.now(), analysis.timings
    frame.error_code = frame.error = ""
    frame.save(update_fields=["status", "finished_at", "timings", "error_code", "error"])


def frames_requeue_stale() -> int:
    """Queue again the frames whose worker died: still 'processing' long after they
    started, or 'queued' for as long (their message was lost with the broker)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RECOGNITION_STALE_FRAME_SECONDS)
    stale = Frame.objects.filter(status=Frame.Status.PROCESSING, started_at__lt=cutoff) | Frame.objects.filter(
        status=Frame.Status.QUEUED, received_at__lt=cutoff
    )
    return _requeue(stale)


def frames_requeue_orphaned() -> int:
    """Queue again, at once, the frames that a process of this machine died holding.

    A frame's message is acknowledged when its models are done, before the recorder has
    stored its result (frames/recorder.py): a pool process killed in between leaves the
    frame 'processing' and the broker will not deliver it again. A process that takes
    over (a new pool process, a worker started again) calls this as it starts;
    frames_requeue_stale catches what it cannot see, such as another machine's frames."""
    held = Frame.objects.filter(status=Frame.Status.PROCESSING, worker__startswith=f"{socket.gethostname()}:")
    orphaned = [pk for pk, worker in held.values_list("pk", "worker") if not _alive(int(worker.rpartition(":")[2]))]
    count = _requeue(held.filter(pk__in=orphaned))
    if count:
        logger.warning("re-queued %s frames held by a process that died", count)
    return count


def _alive(pid: int) -> bool:
    # The caller's own id, reused from a dead process, holds nothing yet.
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _requeue(frames) -> int:
    """Queue the frames again, but give up on those whose worker already stopped
    RECOGNITION_MAX_ATTEMPTS times: a frame that kills the process taking it would
    otherwise stop every pool process in turn, for ever. Returns how many were queued."""
    count = 0
    for frame in frames:
        if frame.attempts >= settings.RECOGNITION_MAX_ATTEMPTS:
            _give_up(frame)
            continue
        # Claimed by its status: a frame that two sweeps find is queued once.
        claimed = Frame.objects.filter(pk=frame.pk, status=frame.status).update(status=Frame.Status.QUEUED)
        if claimed:
            frame_enqueue(frame)
            count += claimed
    return count


def _give_up(frame: Frame) -> None:
    message = (
        f"Given up after {frame.attempts} attempts: the worker processing this frame stopped each time "
        "(the worker's log says why)."
    )
    failed = Frame.objects.filter(pk=frame.pk, status=frame.status).update(
        status=Frame.Status.FAILED, finished_at=timezone.now(), error_code="processing_failed", error=message
    )
    if failed:
        logger.error("frame %s: %s", frame.pk, message)
        metrics.FRAMES_FAILED.labels(code="processing_failed").inc()
