"""Consent to the processing of a person's face: recorded, required before enrollment
where the organization asks for it. Withdrawing it erases the person's biometric data,
which spans the sightings too: apps.sightings.services.privacy."""

from datetime import datetime

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from apps.core import audit
from apps.core.errors import Conflict, ServiceError
from apps.gallery.models import Consent, Person

CONSENT_REQUIRED_MESSAGE = (
    "This organization enrolls photos only of people whose consent is recorded: record it first "
    "(admin, the person's page; or POST /api/v1/people/{id}/consents/)."
)


def consent_given(person: Person) -> Consent | None:
    """The person's consent in force: the latest given and not withdrawn."""
    return person.consents.filter(withdrawn_at__isnull=True).order_by("-given_at").first()


def consent_require(person: Person) -> None:
    """Refuses (409 consent_required) what would store a face of a person without consent,
    where their organization requires it."""
    if person.organization.require_consent and consent_given(person) is None:
        raise Conflict(CONSENT_REQUIRED_MESSAGE.format(id=person.pk), code="consent_required")


@transaction.atomic
def consent_record(
    *,
    person: Person,
    method: str,
    purpose: str,
    given_at: datetime | None = None,
    document: UploadedFile | None = None,
    user=None,
    api_key=None,
) -> Consent:
    if method not in Consent.Method.values:
        raise ServiceError(f"method must be one of {', '.join(Consent.Method.values)}.", code="invalid", field="method")
    if not purpose.strip():
        raise ServiceError("Say what the consent is for.", code="invalid", field="purpose")
    consent = Consent(
        organization_id=person.organization_id,
        person=person,
        method=method,
        purpose=purpose.strip()[:300],
        recorded_by=user if user is not None and user.is_authenticated else None,
    )
    if given_at is not None:
        consent.given_at = given_at
    if document is not None:
        consent.document.save(document.name, document, save=False)
    consent.save()
    consent_recorded_audit(consent, user=user, api_key=api_key)
    return consent


def consent_recorded_audit(consent: Consent, *, user=None, api_key=None) -> None:
    audit.record(
        organization_id=consent.organization_id,
        action=audit.Action.CONSENT_RECORDED,
        user=user,
        api_key=api_key,
        target=consent.person,
        detail={"consent": consent.pk, "method": consent.method, "purpose": consent.purpose},
    )
