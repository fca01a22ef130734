"""A person's own data: their biometric data erased when their consent is withdrawn
(deleting the person erases everything about them: gallery.services.person_delete),
and everything held about them exported as one archive."""

import json
from datetime import timedelta
from pathlib import PurePosixPath

import zipstream
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import audit
from apps.core.errors import Conflict
from apps.core.files import files_clear
from apps.core.models import AuditEvent
from apps.gallery.models import Consent, FaceEmbedding, FaceImage, GroupMember, Person
from apps.gallery.signals import gallery_changed
from apps.recognition.models import Frame
from apps.sightings.attendance import MAX_DAYS, attendance
from apps.sightings.models import CheckIn, Correction, Sighting, StrangerProfile, Visit


@transaction.atomic
def consent_withdraw(*, consent: Consent, user=None, api_key=None) -> dict:
    """Withdraws the consent and, unless another consent of the person is still in force,
    erases their biometric data at once; the consent records, the person's profile, their
    visits and attendance (times, not faces) and the audit trail stay."""
    if consent.withdrawn_at is not None:
        raise Conflict("This consent was withdrawn already.", code="already_withdrawn")
    consent.withdrawn_at = timezone.now()
    consent.withdrawn_by = user if user is not None and user.is_authenticated else None
    consent.save(update_fields=["withdrawn_at", "withdrawn_by"])
    erased = {}
    if not consent.person.consents.filter(withdrawn_at__isnull=True).exists():
        erased = person_biometrics_erase(person=consent.person)
    audit.record(
        organization_id=consent.organization_id,
        action=audit.Action.CONSENT_WITHDRAWN,
        user=user,
        api_key=api_key,
        target=consent.person,
        detail={"consent": consent.pk, "erased": erased},
    )
    return erased


def person_biometrics_erase(*, person: Person) -> dict:
    """Every face of the person the organization holds: enrollment photos and their
    embeddings, sightings with their crops and embeddings, the frames in which nobody else
    was seen, the stranger profile they were promoted from, and the photos of their kiosk
    check-ins. Files go once the transaction
    commits (apps.core.files). A frame in which others were seen too stays for their
    sightings, until retention purges it."""
    sightings = Sighting.objects.filter(person=person)
    frame_ids = set(sightings.values_list("frame_id", flat=True))
    photos = FaceImage.objects.filter(person=person).count()
    FaceImage.objects.filter(person=person).delete()  # embeddings by cascade
    sightings_erased = sightings.count()
    sightings.delete()
    _, deleted = Frame.objects.filter(pk__in=frame_ids, sightings__isnull=True).delete()
    frames = deleted.get(Frame._meta.label, 0)
    # A stranger they were before being promoted: the mean of their faces' embeddings.
    StrangerProfile.objects.filter(person=person).delete()
    check_ins = 0
    for check_in in CheckIn.objects.filter(person=person).exclude(image=""):
        files_clear(check_in, "image")
        check_ins += 1
    gallery_changed.send(sender=Person, organization_id=person.organization_id)
    return {"photos": photos, "sightings": sightings_erased, "frames": frames, "check_in_photos": check_ins}


# --- A person's own data --------------------------------------------------------------


def person_export(*, person: Person, user=None, api_key=None) -> zipstream.ZipStream:
    """Everything the organization holds about one person, as a zip streamed as it is
    read: `person.json` (profile, groups, consent records, photos with their quality,
    embeddings, sightings, visits, attendance per day, check-ins, corrections, the audit
    events about them) and the files (enrollment photos, consent documents, sighting
    crops, check-in photos). Every row is read now, inside the caller's organization;
    only the files are read while the archive streams. Frames are not included: others
    may be in them (their crops of this person are). Audited."""
    organization_id = person.organization_id
    own = {"organization_id": organization_id}
    photos = list(FaceImage.objects.filter(person=person, **own).order_by("pk"))
    consents = list(Consent.objects.filter(person=person, **own).order_by("pk"))
    sightings = list(Sighting.objects.filter(person=person, **own).select_related("camera").order_by("seen_at", "pk"))
    check_ins = list(CheckIn.objects.filter(person=person, **own).order_by("started_at", "pk"))
    visits = list(Visit.objects.filter(person=person, **own).select_related("camera").order_by("started_at", "pk"))
    files = [
        *((photo.image, f"photos/{photo.pk}{_suffix(photo.image)}") for photo in photos),
        *((consent.document, f"consent/{consent.pk}{_suffix(consent.document)}") for consent in consents),
        *((sighting.crop, f"sightings/{sighting.pk}{_suffix(sighting.crop)}") for sighting in sightings),
        *((check_in.image, f"check-ins/{check_in.pk}{_suffix(check_in.image)}") for check_in in check_ins),
    ]
    files = [(file, name) for file, name in files if file]
    record = {
        "exported_at": timezone.now(),
        "person": {
            "id": person.pk,
            "name": person.name,
            "external_id": person.external_id,
            "created_at": person.created_at,
            "groups": sorted(GroupMember.objects.filter(person=person, **own).values_list("group__name", flat=True)),
        },
        "consents": [
            _row(c, "id", "given_at", "method", "purpose", "withdrawn_at", "created_at")
            | {"recorded_by": c.recorded_by and c.recorded_by.get_username()}
            for c in consents
        ],
        "photos": [_row(p, "id", "status", "reason", "quality", "warnings", "created_at") for p in photos],
        "embeddings": [
            _row(e, "face_image_id", "model_name", "detector", "quality", "created_at")
            | {"vector": [round(float(x), 6) for x in e.embedding]}
            for e in FaceEmbedding.objects.filter(person=person, **own).order_by("pk")
        ],
        "sightings": [
            _row(s, "id", "seen_at", "distance", "similarity", "threshold", "model_name", "quality", "visit_id")
            | {"camera": s.camera and s.camera.name, "box": [s.box_x, s.box_y, s.box_w, s.box_h]}
            for s in sightings
        ],
        "visits": [
            _row(v, "id", "started_at", "ended_at", "frames", "confidence", "closed")
            | {"camera": v.camera and v.camera.name}
            for v in visits
        ],
        "attendance": _attendance(person, visits),
        "check_ins": [
            _row(c, "id", "started_at", "finished_at", "outcome", "reason", "direction", "distance") for c in check_ins
        ],
        "corrections": [
            _row(c, "id", "sighting_id", "from_person_id", "to_person_id", "created_at")
            for c in Correction.objects.filter(Q(from_person=person) | Q(to_person=person), **own).order_by("pk")
        ],
        "audit_events": [
            _row(e, "at", "action", "target_type", "detail") | {"by": _actor(e)}
            for e in AuditEvent.objects.filter(
                target_type=Person._meta.label, target_id=str(person.pk), **own
            ).order_by("at", "pk")
        ],
    }
    archive = zipstream.ZipStream(compress_type=zipstream.ZIP_DEFLATED)
    archive.add(json.dumps(record, cls=DjangoJSONEncoder, indent=2).encode(), "person.json")
    for file, name in files:
        archive.add_path(file.path, name)
    audit.record(
        organization_id=organization_id,
        action=audit.Action.EXPORTED,
        user=user,
        api_key=api_key,
        target=person,
        detail={"export": "person", "files": len(files), "sightings": len(sightings)},
    )
    return archive


def _row(obj, *fields: str) -> dict:
    return {field: getattr(obj, field) for field in fields}


def _suffix(file) -> str:
    return PurePosixPath(file.name).suffix


def _actor(event: AuditEvent) -> str:
    if event.user_id:
        return event.user.get_username()
    return f"API key {event.api_key_prefix}" if event.api_key_prefix else "system"


def _attendance(person: Person, visits: list) -> list[dict]:
    """Per day of the organization's time zone, from the first visit to the last."""
    if not visits:
        return []
    organization = person.organization
    zone = organization.zone
    first = min(v.started_at for v in visits).astimezone(zone).date()
    last = max(v.ended_at for v in visits).astimezone(zone).date()
    rows = []
    since = first
    while since <= last:  # attendance() takes at most MAX_DAYS at a time
        until = min(last + timedelta(days=1), since + timedelta(days=MAX_DAYS - 1))
        found = attendance(organization=organization, since=since, until=until, person=person.pk).rows
        rows += [row._asdict() | {"present_seconds": row.present.total_seconds()} for row in found]
        since = until
    for row in rows:
        row.pop("present")
    return rows
