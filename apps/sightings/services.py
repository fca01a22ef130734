from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min, Q
from django.utils import timezone
from pgvector.django import CosineDistance

from apps.core import audit
from apps.core.errors import Conflict, ServiceError
from apps.core.tenancy import tenant_context
from apps.gallery import services as gallery_services
from apps.organizations.models import Organization
from apps.recognition.models import Frame
from apps.sightings.models import Correction, Sighting, StrangerProfile, Visit
from apps.webhooks.models import Event
from apps.webhooks.services import event_publish

# Photos a promoted stranger is enrolled with: the best crops of their sightings.
PROMOTE_PHOTOS = 3


def _lock(keys: list[str]) -> None:
    """Serialize writers of the same visit or stranger group until the transaction ends
    (two workers may record faces of the same person at the same moment). All of a
    transaction's locks are taken in one statement, in one order, so that two frames
    with the same people cannot deadlock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(key)) FROM unnest(%s::text[]) AS key", [sorted(set(keys))]
        )


def _visit_key(organization: Organization, sighting: Sighting) -> str:
    return f"visit:{organization.pk}:{sighting.person_id}:{sighting.camera_id}"


def _strangers_key(organization: Organization) -> str:
    return f"strangers:{organization.pk}"


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


# --- Grouping: known faces into visits, unknown faces into stranger profiles.


def sightings_record(*, organization: Organization, sightings: list[Sighting]) -> None:
    """Store a frame's new sightings, grouped: each known face into its visit, each
    unknown face into its stranger profile. Called in the transaction that stores the
    frame's result, for every frame, so it costs a fixed handful of queries: the faces
    are grouped before they are inserted (they go in with their visit or profile), and
    visits are brought up to date from the new faces alone (visit_add). A visit that
    starts and a stranger who appears are announced to the organization's webhooks."""
    known = sorted((s for s in sightings if s.person_id is not None), key=lambda s: s.seen_at)
    unknown = sorted((s for s in sightings if s.person_id is None and s.embedding is not None), key=lambda s: s.seen_at)
    keys = [_visit_key(organization, s) for s in known] + ([_strangers_key(organization)] if unknown else [])
    if keys:
        _lock(keys)
    visits, started, appeared = {}, set(), []
    for sighting in known:
        visit, new = _visit_for(organization=organization, sighting=sighting)
        visit = visits.setdefault(visit.pk, visit)  # two faces of one person in one frame: one visit
        sighting.visit = visit
        if new:
            started.add(visit.pk)
    for sighting in unknown:
        profile, new = _stranger_for(organization=organization, sighting=sighting)
        sighting.stranger = profile
        if new:
            appeared.append((profile, sighting))
    Sighting.objects.bulk_create(sightings)
    for visit in visits.values():
        visit_add(visit=visit, sightings=[s for s in known if s.visit is visit])
        if visit.pk in started:
            event_publish(organization=organization, event=Event.VISIT_STARTED, data=visit_event(visit))
    for profile, sighting in appeared:
        event_publish(organization=organization, event=Event.STRANGER_SEEN, data=stranger_event(profile, sighting))


def _media_url(file) -> str | None:
    return f"{settings.PUBLIC_BASE_URL}{file.url}" if file else None


def _camera(camera) -> dict | None:
    return {"id": camera.pk, "name": camera.name} if camera is not None else None


def visit_event(visit: Visit) -> dict:
    """A webhook's `data` for visit.started and visit.ended. The crop link needs the
    organization's credentials (an API key), like every media URL."""
    best = visit.best_sighting
    return {
        "visit": {
            "id": visit.pk,
            "person": {"id": visit.person_id, "name": visit.person.name},
            "camera": _camera(visit.camera),
            "first_seen": visit.started_at.isoformat(),
            "last_seen": visit.ended_at.isoformat(),
            "frames": visit.frames,
            "confidence": visit.confidence,
            "crop_url": _media_url(best.crop) if best is not None else None,
        }
    }


def stranger_event(profile: StrangerProfile, sighting: Sighting) -> dict:
    return {
        "stranger": {
            "id": profile.pk,
            "first_seen": profile.first_seen.isoformat(),
            "last_seen": profile.last_seen.isoformat(),
            "sightings": profile.sightings_count,
        },
        "sighting": {
            "id": sighting.pk,
            "seen_at": sighting.seen_at.isoformat(),
            "camera": _camera(sighting.camera),
            "crop_url": _media_url(sighting.crop),
        },
    }


# What grouping reads of a visit: whose and where it is, and the figures it keeps up to date.
VISIT_KEYS = ["organization", "person", "camera"]
VISIT_FIGURES = ["started_at", "ended_at", "frames", "sightings_count", "confidence", "best_sighting"]


def _visit_for(*, organization: Organization, sighting: Sighting) -> tuple[Visit, bool]:
    """The visit of the sighting's person at its camera that the sighting extends
    (within the organization's gap on either side: frames may arrive out of order), or a
    new empty one (True). A sighting that bridges two visits merges them. The caller
    holds the group's lock."""
    gap = timedelta(seconds=organization.visit_gap_seconds)
    nearby = list(
        Visit.objects.filter(
            organization=organization,
            person_id=sighting.person_id,
            camera_id=sighting.camera_id,
            started_at__lte=sighting.seen_at + gap,
            ended_at__gte=sighting.seen_at - gap,
        )
        .select_related("best_sighting")
        .only(*VISIT_KEYS, *VISIT_FIGURES, "best_sighting__quality_score", "best_sighting__seen_at")
        .order_by("started_at")
    )
    if not nearby:
        visit = Visit.objects.create(
            organization=organization,
            person_id=sighting.person_id,
            camera_id=sighting.camera_id,
            started_at=sighting.seen_at,
            ended_at=sighting.seen_at,
        )
        return visit, True
    visit = nearby[0]
    if len(nearby) > 1:
        for other in nearby[1:]:
            Sighting.objects.filter(visit=other).update(visit=visit)
            other.delete()
        visit_refresh(visit=visit)
    return visit, False


def _better(sighting: Sighting, best: Sighting | None) -> bool:
    """The visit's best face: the highest quality score, the earliest of equals."""
    return best is None or (sighting.quality_score, best.seen_at) > (best.quality_score, sighting.seen_at)


def visit_add(*, visit: Visit, sightings: list[Sighting]) -> Visit:
    """Bring a visit up to date with new sightings of frames it had none of, without
    reading its other sightings: the same figures visit_refresh computes from all of
    them. Known faces always have a similarity (they have a nearest enrolled face)."""
    for sighting in sightings:
        count = visit.sightings_count
        visit.confidence = (visit.confidence * count + sighting.similarity) / (count + 1)
        visit.sightings_count = count + 1
        visit.started_at = min(visit.started_at, sighting.seen_at)
        visit.ended_at = max(visit.ended_at, sighting.seen_at)
        if _better(sighting, visit.best_sighting):
            visit.best_sighting = sighting
    visit.frames += len({sighting.frame_id for sighting in sightings})
    visit.save(update_fields=VISIT_FIGURES)
    return visit


def visit_assign(*, organization: Organization, sighting: Sighting) -> tuple[Visit, bool]:
    """Put a stored known sighting (one a user corrected, or a promoted stranger's) into
    its visit (True: a new visit), recomputed from all its sightings."""
    _lock([_visit_key(organization, sighting)])
    visit, new = _visit_for(organization=organization, sighting=sighting)
    Sighting.objects.filter(pk=sighting.pk).update(visit=visit)
    sighting.visit = visit
    visit_refresh(visit=visit)
    return visit, new


def visit_refresh(*, visit: Visit) -> Visit | None:
    """Recompute a visit from its sightings; a visit left without any is deleted."""
    members = Sighting.objects.filter(visit=visit)
    stats = members.aggregate(
        first=Min("seen_at"),
        last=Max("seen_at"),
        frames=Count("frame", distinct=True),
        sightings=Count("pk"),
        confidence=Avg("similarity"),
    )
    if not stats["frames"]:
        visit.delete()
        return None
    visit.started_at, visit.ended_at, visit.frames = stats["first"], stats["last"], stats["frames"]
    visit.sightings_count, visit.confidence = stats["sightings"], stats["confidence"] or 0.0
    visit.best_sighting = members.order_by("-quality_score", "seen_at").only("quality_score", "seen_at").first()
    visit.save(update_fields=VISIT_FIGURES)
    return visit


def visit_rebuild(*, organization: Organization, visit: Visit) -> None:
    """Group a visit's sightings again, after one of them left it: a visit can split."""
    members = list(Sighting.objects.filter(visit=visit).order_by("seen_at"))
    visit.delete()
    for sighting in members:
        sighting.visit = None
        visit_assign(organization=organization, sighting=sighting)


def _stranger_for(*, organization: Organization, sighting: Sighting) -> tuple[StrangerProfile, bool]:
    """Add an unknown face to the stranger profile whose centroid is within the
    organization's threshold, or start a profile. Promoted profiles take no more faces
    (their person is enrolled now); dismissed ones do, so that they stay dismissed.

    Also says whether the stranger *appeared*: a new profile, or an open one not seen
    for longer than the visit gap (what stranger.seen announces, once per appearance).
    The caller holds the organization's strangers lock."""
    vector = _unit(sighting.embedding)
    nearest = (
        StrangerProfile.objects.filter(organization=organization, model_name=sighting.model_name)
        .exclude(status=StrangerProfile.Status.PROMOTED)
        .annotate(distance=CosineDistance("centroid", vector))
        .order_by("distance")
        .first()
    )
    if nearest is not None and nearest.distance <= organization.threshold_for(sighting.model_name):
        profile = nearest
        gap = timedelta(seconds=organization.visit_gap_seconds)
        appeared = profile.status == StrangerProfile.Status.OPEN and sighting.seen_at - profile.last_seen > gap
        count = profile.sightings_count
        profile.centroid = _unit(_unit(profile.centroid) * count + vector)
        profile.sightings_count = count + 1
        profile.first_seen = min(profile.first_seen, sighting.seen_at)
        profile.last_seen = max(profile.last_seen, sighting.seen_at)
        profile.save(update_fields=["centroid", "sightings_count", "first_seen", "last_seen"])
        return profile, appeared
    profile = StrangerProfile.objects.create(
        organization=organization,
        model_name=sighting.model_name,
        centroid=vector,
        sightings_count=1,
        first_seen=sighting.seen_at,
        last_seen=sighting.seen_at,
    )
    return profile, True


def stranger_assign(*, organization: Organization, sighting: Sighting) -> StrangerProfile:
    """Put a stored unknown sighting (one a user corrected to unknown) into a profile."""
    _lock([_strangers_key(organization)])
    profile, _ = _stranger_for(organization=organization, sighting=sighting)
    Sighting.objects.filter(pk=sighting.pk).update(stranger=profile)
    sighting.stranger = profile
    return profile


def stranger_refresh(*, profile: StrangerProfile) -> StrangerProfile | None:
    """Recompute a profile from its faces, after one left it; an empty profile goes."""
    members = list(Sighting.objects.filter(stranger=profile).values_list("seen_at", "embedding"))
    if not members:
        profile.delete()
        return None
    profile.centroid = _unit(np.mean([_unit(vector) for _, vector in members], axis=0))
    profile.sightings_count = len(members)
    profile.first_seen = min(seen for seen, _ in members)
    profile.last_seen = max(seen for seen, _ in members)
    profile.save(update_fields=["centroid", "sightings_count", "first_seen", "last_seen"])
    return profile


# --- What users do on the report pages and through the API.


@transaction.atomic
def sighting_correct(*, organization: Organization, sighting: Sighting, person, user=None, api_key=None) -> Correction:
    """ "Not this person": move a sighting to another person, or to unknown (person None).

    The correction is kept: its face becomes a negative example of the person it was
    taken from (recognition.services.decide) and an impostor pair for calibration.
    Visits and stranger profiles are regrouped around the moved face."""
    new_person_id = person.pk if person is not None else None
    if sighting.person_id == new_person_id:
        raise Conflict("The sighting is already assigned that way.", code="no_change", field="person")
    correction = Correction.objects.create(
        organization=organization, sighting=sighting, from_person_id=sighting.person_id, to_person=person, user=user
    )
    old_visit, old_stranger = sighting.visit, sighting.stranger
    sighting.person = person
    sighting.visit = None
    if person is not None:
        sighting.stranger = None
    sighting.save(update_fields=["person", "visit", "stranger"])
    if old_visit is not None:
        visit_rebuild(organization=organization, visit=old_visit)
    if old_stranger is not None and person is not None:
        stranger_refresh(profile=old_stranger)
    if person is not None:
        visit_assign(organization=organization, sighting=sighting)
    elif sighting.stranger_id is None and sighting.embedding is not None:
        stranger_assign(organization=organization, sighting=sighting)
    audit.record(
        organization_id=organization.pk,
        action=audit.Action.CORRECTED,
        user=user,
        api_key=api_key,
        target=sighting,
        detail={"from_person": correction.from_person_id, "to_person": new_person_id},
    )
    return correction


@transaction.atomic
def stranger_promote(*, organization: Organization, profile: StrangerProfile, name: str, user=None, api_key=None):
    """Make a stranger a person: the best crops of their faces become enrollment photos
    (checked and embedded by a worker, like any photo), and their sightings become the
    person's, grouped into visits."""
    name = name.strip()
    if not name:
        raise ServiceError("The new person needs a name.", code="invalid", field="name")
    if profile.status == StrangerProfile.Status.PROMOTED:
        raise Conflict("This stranger has been promoted already.", code="already_promoted")
    person = gallery_services.person_create(organization=organization, name=name)
    for sighting in profile.sightings.exclude(crop="").order_by("-quality_score", "-seen_at")[:PROMOTE_PHOTOS]:
        with sighting.crop.open("rb") as crop:
            gallery_services.face_image_add(person=person, data=crop.read())
    members = list(profile.sightings.order_by("seen_at"))
    for sighting in members:
        sighting.person = person
        sighting.save(update_fields=["person"])
        visit_assign(organization=organization, sighting=sighting)
    profile.status, profile.person = StrangerProfile.Status.PROMOTED, person
    profile.save(update_fields=["status", "person"])
    audit.record(
        organization_id=organization.pk,
        action=audit.Action.STRANGER_PROMOTED,
        user=user,
        api_key=api_key,
        target=person,
        detail={"stranger": profile.pk, "sightings": len(members)},
    )
    return person


def stranger_dismiss(*, organization: Organization, profile: StrangerProfile, user=None, api_key=None):
    if profile.status != StrangerProfile.Status.OPEN:
        raise Conflict(f"This stranger is {profile.status} already.", code="not_open")
    profile.status = StrangerProfile.Status.DISMISSED
    profile.save(update_fields=["status"])
    audit.record(
        organization_id=organization.pk,
        action=audit.Action.STRANGER_DISMISSED,
        user=user,
        api_key=api_key,
        target=profile,
    )
    return profile


@transaction.atomic
def visits_close(*, organization: Organization, now=None) -> int:
    """Close the visits nobody was seen in for the organization's gap, and announce
    visit.ended. A frame that arrives later (buffered by a camera) still joins them."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=organization.visit_gap_seconds)
    closed = 0
    ended = Visit.objects.filter(organization=organization, closed=False, ended_at__lt=cutoff)
    # Rows locked (and others' locked rows skipped) so that no visit is announced twice.
    rows = ended.select_related("person", "camera", "best_sighting").select_for_update(skip_locked=True, of=("self",))
    for visit in rows:
        Visit.objects.filter(pk=visit.pk).update(closed=True)
        event_publish(organization=organization, event=Event.VISIT_ENDED, data=visit_event(visit))
        closed += 1
    return closed


def for_each_organization(service, **kwargs) -> dict:
    """A periodic sweep: the service once per organization, each in its own tenant context."""
    results = {}
    for organization in Organization.objects.all():
        with tenant_context(organization.pk):
            results[organization.slug] = service(organization=organization, **kwargs)
    return results


def visits_close_all(*, now=None) -> dict[str, int]:
    """Every 30 s (beat)."""
    return for_each_organization(visits_close, now=now)


def report_exported(*, organization: Organization, report: str, filters: dict, user=None, api_key=None) -> None:
    audit.record(
        organization_id=organization.pk,
        action=audit.Action.EXPORTED,
        user=user,
        api_key=api_key,
        detail={"report": report, "filters": filters},
    )


# --- Retention.


def retention_purge(*, organization: Organization, now=None) -> dict:
    """Delete what the organization keeps no longer: sightings (with their frames and
    crops) older than sighting_retention_days, and unknown faces older than
    unknown_retention_days. Files go with their rows (apps.core.files)."""
    now = now or timezone.now()
    purged = {"frames": 0, "sightings": 0}
    if organization.sighting_retention_days is not None:
        cutoff = now - timedelta(days=organization.sighting_retention_days)
        _, deleted = Frame.objects.filter(organization=organization, captured_at__lt=cutoff).delete()
        _count(purged, deleted)
        _, deleted = Sighting.objects.filter(organization=organization, seen_at__lt=cutoff).delete()
        _count(purged, deleted)
        Visit.objects.filter(organization=organization, ended_at__lt=cutoff).delete()
    if organization.unknown_retention_days is not None:
        cutoff = now - timedelta(days=organization.unknown_retention_days)
        _, deleted = Sighting.objects.filter(
            organization=organization, person__isnull=True, seen_at__lt=cutoff
        ).delete()
        _count(purged, deleted)
        # A frame in which nobody known was seen holds only strangers' faces.
        unknown_only = Frame.objects.filter(organization=organization, captured_at__lt=cutoff).exclude(
            Q(sightings__person__isnull=False)
        )
        _, deleted = unknown_only.delete()
        _count(purged, deleted)
        StrangerProfile.objects.filter(organization=organization, last_seen__lt=cutoff).exclude(
            status=StrangerProfile.Status.PROMOTED
        ).delete()
    if any(purged.values()):
        audit.record(organization_id=organization.pk, action=audit.Action.RETENTION_PURGED, detail=purged)
    return purged


def _count(purged: dict, deleted: dict) -> None:
    purged["frames"] += deleted.get("recognition.Frame", 0)
    purged["sightings"] += deleted.get("sightings.Sighting", 0)


def retention_purge_all(*, now=None) -> dict[str, dict]:
    """Every hour (beat)."""
    return for_each_organization(retention_purge, now=now)
