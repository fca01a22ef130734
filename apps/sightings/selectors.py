from django.db.models import QuerySet

from apps.sightings.models import Sighting


def sightings_filter(
    *, organization, person=None, camera=None, since=None, until=None, known=None, min_similarity=None
) -> QuerySet[Sighting]:
    sightings = Sighting.objects.filter(organization=organization).select_related("person")
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
