"""A person's biometric data: erased when their consent is withdrawn. (Deleting the
person erases everything about them: gallery.services.person_delete.)"""

from django.db import transaction
from django.utils import timezone

from apps.core import audit
from apps.core.errors import Conflict
from apps.core.files import files_clear
from apps.gallery.models import Consent, FaceImage, Person
from apps.gallery.signals import gallery_changed
from apps.recognition.models import Frame
from apps.sightings.models import CheckIn, Sighting, StrangerProfile


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
    frames = Frame.objects.filter(pk__in=frame_ids, sightings__isnull=True).count()
    Frame.objects.filter(pk__in=frame_ids, sightings__isnull=True).delete()
    # A stranger they were before being promoted: the mean of their faces' embeddings.
    StrangerProfile.objects.filter(person=person).delete()
    check_ins = 0
    for check_in in CheckIn.objects.filter(person=person).exclude(image=""):
        files_clear(check_in, "image")
        check_ins += 1
    gallery_changed.send(sender=Person, organization_id=person.organization_id)
    return {"photos": photos, "sightings": sightings_erased, "frames": frames, "check_in_photos": check_ins}
