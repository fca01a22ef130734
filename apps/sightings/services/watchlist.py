"""The watchlist: who is on it, and the announcement of their sightings."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Greatest

from apps.core import audit
from apps.core.errors import Conflict, ServiceError
from apps.organizations.models import Organization
from apps.sightings.models import Sighting, WatchlistEntry
from apps.sightings.services.events import watchlist_event
from apps.webhooks.models import Event
from apps.webhooks.services import event_publish


def watchlist_add(
    *, organization: Organization, reason: str, person=None, stranger=None, user=None, api_key=None
) -> WatchlistEntry:
    """Put a person or a stranger profile (one of them) on the watchlist, with why."""
    if (person is None) == (stranger is None):
        raise ServiceError("Name a person or a stranger, not both.", field="person")
    if not reason.strip():
        raise ServiceError("Say why they are watched.", field="reason")
    entry = WatchlistEntry(
        organization=organization, person=person, stranger=stranger, reason=reason.strip(), added_by=user
    )
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        raise Conflict("They are on the watchlist already.", code="duplicate", field="person") from None
    audit.record(organization_id=organization.pk, action=audit.Action.CREATED, user=user, api_key=api_key, target=entry)
    return entry


def watchlist_remove(*, entry: WatchlistEntry, user=None, api_key=None) -> None:
    audit.record(
        organization_id=entry.organization_id,
        action=audit.Action.DELETED,
        user=user,
        api_key=api_key,
        target=entry,
        detail={"reason": entry.reason},
    )
    entry.delete()


def _watches(entry: WatchlistEntry, sighting: Sighting) -> bool:
    if entry.person_id is not None:
        return sighting.person_id == entry.person_id
    return sighting.stranger_id == entry.stranger_id


def watchlist_notify(*, organization: Organization, sightings: list[Sighting]) -> int:
    """`watchlist.seen` for the stored sightings of watched people and strangers, at
    most once per entry per visit gap: someone who stays in view is one event, and
    one who comes back after the gap is another. One query when nobody is watched.
    Returns how many events were raised."""
    people = {s.person_id for s in sightings if s.person_id is not None}
    strangers = {s.stranger_id for s in sightings if s.stranger_id is not None}
    if not people and not strangers:
        return 0
    entries = WatchlistEntry.objects.filter(organization=organization).filter(
        Q(person_id__in=people) | Q(stranger_id__in=strangers)
    )
    gap = timedelta(seconds=organization.visit_gap_seconds)
    raised = 0
    for entry in entries.select_related("person", "added_by"):
        sighting = max((s for s in sightings if _watches(entry, s)), key=lambda s: s.seen_at)
        # The first to move last_seen across the gap raises the event (two workers may
        # store frames of the same person at once); the others only keep it up to date.
        again = (
            WatchlistEntry.objects.filter(pk=entry.pk)
            .filter(Q(last_seen__isnull=True) | Q(last_seen__lt=sighting.seen_at - gap))
            .update(last_seen=sighting.seen_at, last_sighting=sighting)
        )
        if again:
            event_publish(organization=organization, event=Event.WATCHLIST_SEEN, data=watchlist_event(entry, sighting))
            raised += 1
        else:
            WatchlistEntry.objects.filter(pk=entry.pk).update(
                last_seen=Greatest("last_seen", sighting.seen_at), last_sighting=sighting
            )
    return raised
