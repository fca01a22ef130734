"""Kiosk check-ins. The kiosk sends a frame; once it shows one face, about frontal,
a check-in starts: the face is identified, a head movement is asked for, and the
kiosk sends frame after frame while the person turns. Each is judged as it comes
(recognition.pipeline.presence); the first that settles it ends the check-in. A
passed one is recorded as the first frame, on the kiosk's camera, through the same
path as any camera's frame (sighting, visit, attendance, webhooks). Nothing of a
refused one is kept but the outcome, who the face looked like and the movement."""

import uuid
from datetime import timedelta

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, NoFace
from apps.frames.services.frames import frame_create, recognized_candidate
from apps.frames.services.lookups import image_analyze_remote
from apps.gallery import search
from apps.recognition.pipeline import match, presence
from apps.sightings.models import CheckIn

# A check-in still pending this long after it began was left (the kiosk went away):
# the sweep refuses it, and deletes the frame it holds.
ABANDONED_AFTER = timedelta(seconds=presence.WINDOW_SECONDS + 30)


def _observation(face: dict, seconds: float) -> presence.Observation:
    box = face["box"]
    return presence.Observation(
        seconds=seconds,
        x=box["x"] + box["w"] / 2,
        y=box["y"] + box["h"] / 2,
        size=float(box["w"]),
        yaw=face["quality"]["yaw"],
    )


def _stored(observation: presence.Observation) -> list[float]:
    o = observation
    return [round(value, 3) for value in (o.seconds, o.x, o.y, o.size, o.yaw)]


def _faces_with_pose(organization, data: bytes) -> list[dict]:
    faces = image_analyze_remote(organization=organization, data=data)
    return [face for face in faces if face["quality"]["yaw"] is not None]


def check_in_start(*, organization, camera, data: bytes) -> CheckIn:
    """Start a check-in on the largest face of the frame, or raise (422) when there is
    none or it is not frontal: the kiosk keeps sending until there is."""
    now = timezone.now()  # the challenge's time starts with its first frame, as the others' do
    faces = _faces_with_pose(organization, data)
    if not faces:
        raise NoFace("No face was found in the image.", field="image")
    face = max(faces, key=lambda f: f["box"]["w"] * f["box"]["h"])
    start = _observation(face, 0.0)
    if abs(start.yaw) > presence.MAX_START_YAW:
        raise NoFace("Look straight at the camera.", code="face_not_frontal", field="image")
    embedding = np.asarray(face["embedding"], dtype=np.float32)
    candidates = search.gallery_candidates(
        organization_id=organization.pk, model_name=organization.recognition_model, embedding=embedding, limit=2
    )
    recognized = recognized_candidate(organization=organization, embedding=embedding, candidates=candidates)
    nearest = candidates[0] if candidates else None
    with transaction.atomic():
        for left in CheckIn.objects.select_for_update().filter(camera=camera, outcome=CheckIn.Outcome.PENDING):
            _finish(left, presence.Verdict(False, "abandoned", left.turn or 0.0))
        check_in = CheckIn(
            organization=organization,
            camera=camera,
            direction=presence.challenge_direction(),
            observations=[_stored(start)],
            person_id=recognized.person_id if recognized else None,
            distance=nearest.distance if nearest else None,
            similarity=match.similarity(nearest.distance, organization.threshold) if nearest else None,
            started_at=now,
        )
        check_in.image.save(f"{uuid.uuid4().hex}.img", ContentFile(data), save=False)
        check_in.save()
    return check_in


def check_in_frame(*, check_in: CheckIn, data: bytes) -> CheckIn:
    """Judge one more frame of a pending check-in; ends it once the verdict is known."""
    organization = check_in.organization
    elapsed = (timezone.now() - check_in.started_at).total_seconds()
    if check_in.outcome != CheckIn.Outcome.PENDING:
        raise Conflict("This check-in has ended; start another.", code="check_in_ended")
    faces = _faces_with_pose(organization, data)
    with transaction.atomic():
        check_in = CheckIn.objects.select_for_update().select_related("organization").get(pk=check_in.pk)
        if check_in.outcome != CheckIn.Outcome.PENDING:
            raise Conflict("This check-in has ended; start another.", code="check_in_ended")
        seen = [presence.Observation(*values) for values in check_in.observations]
        if faces:
            # The face nearest the last one seen: another face that walks in is judged too.
            last = seen[-1]
            nearest = min(
                (_observation(face, elapsed) for face in faces),
                key=lambda o: (o.x - last.x) ** 2 + (o.y - last.y) ** 2,
            )
            seen.append(nearest)
            check_in.observations = [*check_in.observations, _stored(nearest)]
        verdict = presence.challenge_outcome(seen, check_in.direction, elapsed)
        if verdict is None:
            check_in.save(update_fields=["observations"])
        else:
            _finish(check_in, verdict)
    return check_in


def _finish(check_in: CheckIn, verdict: presence.Verdict) -> None:
    """Record the outcome; a passed check-in's first frame becomes a frame of the kiosk's
    camera. The held frame is deleted either way, once the transaction commits."""
    check_in.outcome = CheckIn.Outcome.PASSED if verdict.passed else CheckIn.Outcome.REFUSED
    check_in.reason, check_in.turn, check_in.finished_at = verdict.reason, round(verdict.turn, 3), timezone.now()
    if check_in.image:
        if verdict.passed:
            with check_in.image.open("rb") as file:
                check_in.frame = frame_create(
                    organization=check_in.organization,
                    data=file.read(),
                    camera=check_in.camera,
                    captured_at=check_in.started_at,
                )
        storage, name = check_in.image.storage, check_in.image.name
        transaction.on_commit(lambda: storage.delete(name))
        check_in.image = ""
    check_in.save()


def check_ins_abandoned_sweep() -> int:
    """Refuse the check-ins left pending past ABANDONED_AFTER, so that no face's frame
    is held longer than a check-in needs it. Returns how many."""
    cutoff = timezone.now() - ABANDONED_AFTER
    left = CheckIn.objects.filter(outcome=CheckIn.Outcome.PENDING, started_at__lt=cutoff)
    count = 0
    for pk in left.values_list("pk", flat=True):
        with transaction.atomic():
            check_in = CheckIn.objects.select_for_update().filter(pk=pk, outcome=CheckIn.Outcome.PENDING).first()
            if check_in is not None:
                _finish(check_in, presence.Verdict(False, "abandoned", check_in.turn or 0.0))
                count += 1
    return count
