from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.core import audit
from apps.core.tenancy import tenant_context
from apps.organizations.models import Organization
from apps.recognition.models import Frame
from apps.sightings.models import Sighting


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
    if any(purged.values()):
        audit.record(organization_id=organization.pk, action=audit.Action.RETENTION_PURGED, detail=purged)
    return purged


def _count(purged: dict, deleted: dict) -> None:
    purged["frames"] += deleted.get("recognition.Frame", 0)
    purged["sightings"] += deleted.get("sightings.Sighting", 0)


def retention_purge_all(*, now=None) -> dict[str, dict]:
    """The periodic sweep: each organization in its own tenant context."""
    results = {}
    for organization in Organization.objects.all():
        with tenant_context(organization.pk):
            results[organization.slug] = retention_purge(organization=organization, now=now)
    return results
