"""Grouping: known faces into visits, unknown faces into stranger profiles, under
advisory locks so that two workers never split one visit."""

from datetime import timedelta

import numpy as np
from django.db import connection
from django.db.models import Avg, Count, Max, Min
from pgvector.django import CosineDistance

from apps.organizations.models import Organization
from apps.sightings.models import Sighting, StrangerProfile, Visit
from apps.sightings.services.events import stranger_event, visit_event
from apps.sightings.services.watchlist import watchlist_notify
from apps.webhooks.models import Event
from apps.webhooks.services import event_publish


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


def sightings_record(*, organization: Organization, sightings: list[Sighting]) -> None:
    """Store a frame's new sightings, grouped: each known face into its visit, each
    unknown face into its stranger profile. Called in the transaction that stores the
    frame's result, for every frame, so it costs a fixed handful of queries: the faces
    are grouped before they are inserted (they go in with their visit or profile), and
    visits are brought up to date from the new faces alone (visit_add). A visit that
    starts, a stranger who appears and someone on the watchlist are announced to the
    organization's webhooks."""
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
    watchlist_notify(organization=organization, sightings=sightings)


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
