"""What users do on the report pages and through the API: correct a sighting, promote
or dismiss a stranger; exports are audited."""

from django.db import transaction

from apps.core import audit
from apps.core.errors import Conflict, ServiceError
from apps.gallery import services as gallery_services
from apps.organizations.models import Organization
from apps.sightings.models import Correction, Sighting, StrangerProfile, WatchlistEntry
from apps.sightings.services.grouping import stranger_assign, stranger_refresh, visit_assign, visit_rebuild

# Photos a promoted stranger is enrolled with: the best crops of their sightings.
PROMOTE_PHOTOS = 3


@transaction.atomic
def sighting_correct(*, organization: Organization, sighting: Sighting, person, user=None, api_key=None) -> Correction:
    """ "Not this person": move a sighting to another person, or to unknown (person None).

    The correction is kept: its face becomes a negative example of the person it was
    taken from (frames.services.frames.recognized_candidate) and an impostor pair for calibration.
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
def stranger_promote(
    *,
    organization: Organization,
    profile: StrangerProfile,
    name: str,
    consent: dict | None = None,
    user=None,
    api_key=None,
):
    """Make a stranger a person: the best crops of their faces become enrollment photos
    (checked and embedded by a worker, like any photo), and their sightings become the
    person's, grouped into visits. `consent` (method, purpose, given_at) is recorded for
    the new person first; where the organization requires consent, nothing is stored
    without it (409 consent_required)."""
    name = name.strip()
    if not name:
        raise ServiceError("The new person needs a name.", code="invalid", field="name")
    if profile.status == StrangerProfile.Status.PROMOTED:
        raise Conflict("This stranger has been promoted already.", code="already_promoted")
    person = gallery_services.person_create(organization=organization, name=name)
    if consent:
        gallery_services.consent_record(person=person, user=user, api_key=api_key, **consent)
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
    # A watched stranger stays watched as the person they became.
    WatchlistEntry.objects.filter(stranger=profile).update(person=person, stranger=None)
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


def report_exported(*, organization: Organization, report: str, filters: dict, user=None, api_key=None) -> None:
    audit.record(
        organization_id=organization.pk,
        action=audit.Action.EXPORTED,
        user=user,
        api_key=api_key,
        detail={"report": report, "filters": filters},
    )
