"""Reads for the report pages and the API. Every query is bounded: filters run on the
organization's indexes and pages fetch their rows with a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import ExtractHour, RowNumber, TruncDate
from django.utils import timezone

from apps.gallery.models import GroupMember
from apps.sightings.models import Sighting, StrangerProfile, Visit, WatchlistEntry

STRANGER_SAMPLES = 4
WATCHED_SHOWN = 10


def in_group(group_id: int) -> QuerySet:
    """The ids of a group's people, as a subquery."""
    return GroupMember.objects.filter(group_id=group_id).values("person_id")


def sightings_filter(
    *, organization, person=None, group=None, camera=None, since=None, until=None, known=None, min_similarity=None
) -> QuerySet[Sighting]:
    sightings = Sighting.objects.filter(organization=organization).select_related("person", "camera")
    if group is not None:
        sightings = sightings.filter(person__in=in_group(group))
    if person is not None:
        sightings = sightings.filter(person_id=person)
    if camera is not None:
        sightings = sightings.filter(camera_id=camera)
    if since is not None:
        sightings = sightings.filter(seen_at__gte=since)
    if until is not None:
        sightings = sightings.filter(seen_at__lt=until)
    if known is not None:
        sightings = sightings.filter(person__isnull=not known)
    if min_similarity is not None:
        sightings = sightings.filter(similarity__gte=min_similarity)
    return sightings


def visits_filter(
    *, organization, person=None, group=None, camera=None, since=None, until=None, known=None, min_similarity=None
) -> QuerySet[Visit]:
    """Visits with the sightings' filters: a visit is always of a known person, so
    `known=False` gives none; min_similarity applies to the visit's confidence; the
    dates select visits that overlap [since, until)."""
    visits = Visit.objects.filter(organization=organization).select_related("person", "camera", "best_sighting")
    if known is False:
        return visits.none()
    if group is not None:
        visits = visits.filter(person__in=in_group(group))
    if person is not None:
        visits = visits.filter(person_id=person)
    if camera is not None:
        visits = visits.filter(camera_id=camera)
    if since is not None:
        visits = visits.filter(ended_at__gte=since)
    if until is not None:
        visits = visits.filter(started_at__lt=until)
    if min_similarity is not None:
        visits = visits.filter(confidence__gte=min_similarity)
    return visits


def strangers_list(*, organization, status: str = StrangerProfile.Status.OPEN) -> QuerySet[StrangerProfile]:
    return StrangerProfile.objects.filter(organization=organization, status=status).order_by("-last_seen", "-pk")


def stranger_samples(*, profiles: list[StrangerProfile], per_profile: int = STRANGER_SAMPLES) -> dict[int, list]:
    """The best-looking faces of each profile, for a whole page of profiles in one query."""
    ranked = (
        Sighting.objects.filter(stranger__in=profiles)
        .exclude(crop="")
        .annotate(rank=Window(RowNumber(), partition_by=F("stranger_id"), order_by=[F("quality_score").desc()]))
        .filter(rank__lte=per_profile)
        .select_related("camera")
        .order_by("stranger_id", "rank")
    )
    samples: dict[int, list] = {profile.pk: [] for profile in profiles}
    for sighting in ranked:
        samples[sighting.stranger_id].append(sighting)
    return samples


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    visits_per_hour: list[tuple[int, int]]  # (hour of day, visits), all 24 hours
    visits_per_day: list[tuple[datetime, int]]  # every day of the period
    visits_per_camera: list[tuple[str, int]]
    known_faces: int
    unknown_faces: int
    open_strangers: int
    watched: list  # watchlist entries seen in the period, latest first (highlighted)

    @property
    def unknown_share(self) -> float | None:
        total = self.known_faces + self.unknown_faces
        return self.unknown_faces / total if total else None


def dashboard(*, organization, days: int = 14, group=None, now=None) -> Dashboard:
    """Counts over the last `days` days, each one aggregate query on an index; of one
    group's people only, when given (open strangers are nobody's)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    since = timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), datetime.min.time()))
    visits = Visit.objects.filter(organization=organization, started_at__gte=since)
    faces = Sighting.objects.filter(organization=organization, seen_at__gte=since)
    watched = WatchlistEntry.objects.filter(organization=organization, last_seen__gte=since)
    if group is not None:
        visits = visits.filter(person__in=in_group(group))
        # Unknown faces are nobody's: with a group, the group's faces only.
        faces = faces.filter(person__in=in_group(group))
    per_hour = dict(
        visits.annotate(hour=ExtractHour("started_at")).values("hour").annotate(n=Count("id")).values_list("hour", "n")
    )
    per_day = dict(
        visits.annotate(day=TruncDate("started_at")).values("day").annotate(n=Count("id")).values_list("day", "n")
    )
    per_camera = (
        visits.values("camera__name")
        .annotate(n=Count("id"))
        .order_by("-n", "camera__name")
        .values_list("camera__name", "n")
    )
    faces = faces.aggregate(
        known=Count("id", filter=Q(person__isnull=False)), unknown=Count("id", filter=Q(person__isnull=True))
    )
    return Dashboard(
        since=since,
        visits_per_hour=[(hour, per_hour.get(hour, 0)) for hour in range(24)],
        visits_per_day=[
            (day, per_day.get(day, 0)) for day in (today - timedelta(days=offset) for offset in range(days - 1, -1, -1))
        ],
        visits_per_camera=[(name or "no camera", n) for name, n in per_camera[:10]],
        known_faces=faces["known"],
        unknown_faces=faces["unknown"],
        open_strangers=StrangerProfile.objects.filter(
            organization=organization, status=StrangerProfile.Status.OPEN
        ).count(),
        watched=list(
            (watched if group is None else watched.filter(person__in=in_group(group)))
            .select_related("person", "last_sighting__camera")
            .order_by("-last_seen")[:WATCHED_SHOWN]
        ),
    )


def person_cameras(*, organization, person) -> list[dict]:
    """Where the person has been seen: each camera with its visits and the last one."""
    from django.db.models import Max

    return list(
        Visit.objects.filter(organization=organization, person=person)
        .values("camera__name")
        .annotate(visits=Count("id"), last=Max("ended_at"))
        .order_by("-last")
    )
