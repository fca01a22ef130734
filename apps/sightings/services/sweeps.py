"""Periodic sweeps over every organization: visits closed after their gap, and what
retention keeps no longer deleted."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import audit
from apps.core.tenancy import tenant_context
from apps.organizations.models import Organization
from apps.recognition.models import Frame
from apps.sightings.models import Sighting, StrangerProfile, Visit
from apps.sightings.services.events import visit_event
from apps.webhooks.models import Event
from apps.webhooks.services import event_publish


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
