"""Visits and corrections on sightings of known people (the recognition is not the
subject here: sightings are stored as the worker stores them, then grouped)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import Conflict
from apps.core.models import AuditEvent
from apps.gallery.models import Person
from apps.organizations.models import Camera
from apps.sightings import services
from apps.sightings.models import Correction, Sighting, StrangerProfile, Visit
from tests.sightings.recorded import record_frame, record_sighting

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=1)


def seen(organization, person, camera, seconds: float, similarity: float = 0.9, quality: float = 0.5):
    """A frame at T0 + seconds with one face, stored and grouped as frame_process does."""
    return record_sighting(
        organization, person, camera, T0 + timedelta(seconds=seconds), similarity=similarity, quality=quality
    )


@pytest.fixture
def place(org_a):
    organization = org_a[0]
    return (
        organization,
        Person.objects.create(organization=organization, name="Ann"),
        Person.objects.create(organization=organization, name="Bob"),
        Camera.objects.create(organization=organization, name="door"),
        Camera.objects.create(organization=organization, name="hall"),
    )


def test_consecutive_sightings_within_the_gap_are_one_visit(place):
    organization, ann, _, door, _ = place
    first = seen(organization, ann, door, 0, similarity=0.8, quality=0.3)
    best = seen(organization, ann, door, 40, similarity=0.9, quality=0.9)
    seen(organization, ann, door, 95, similarity=1.0, quality=0.5)  # 55 s after the previous one
    visit = Visit.objects.get()
    assert (visit.person, visit.camera, visit.frames) == (ann, door, 3)
    assert (visit.started_at, visit.ended_at) == (first.seen_at, T0 + timedelta(seconds=95))
    assert visit.confidence == pytest.approx(0.9)
    assert visit.best_sighting == best
    assert set(Sighting.objects.values_list("visit", flat=True)) == {visit.pk}


def test_a_longer_gap_another_camera_or_another_person_start_new_visits(place):
    organization, ann, bob, door, hall = place
    seen(organization, ann, door, 0)
    seen(organization, ann, door, 61)  # over the 60 s default
    seen(organization, ann, hall, 30)
    seen(organization, bob, door, 30)
    assert Visit.objects.count() == 4
    organization.visit_gap_seconds = 120
    organization.save()
    seen(organization, ann, door, 150)  # within 120 s of the one at 61 s
    assert Visit.objects.filter(person=ann, camera=door).count() == 2
    assert Visit.objects.get(person=ann, camera=door, started_at=T0 + timedelta(seconds=61)).frames == 2


def test_a_late_frame_that_bridges_two_visits_merges_them(place):
    organization, ann, _, door, _ = place
    seen(organization, ann, door, 0)
    seen(organization, ann, door, 100)
    assert Visit.objects.count() == 2
    seen(organization, ann, door, 50)  # a buffered frame, sent late with its capture time
    visit = Visit.objects.get()
    assert (visit.frames, visit.started_at, visit.ended_at) == (3, T0, T0 + timedelta(seconds=100))


def test_figures_kept_up_to_date_face_by_face_are_those_of_all_the_faces(place):
    """visit_add updates a visit from a frame's new faces alone; visit_refresh
    recomputes it from all of them. Out of order, with ties, a merge and a frame with
    two faces of one person."""
    organization, ann, _, door, _ = place
    for seconds, similarity, quality in [(30, 0.7, 0.4), (0, 0.95, 0.6), (100, 0.8, 0.6), (10, 0.6, 0.2)]:
        seen(organization, ann, door, seconds, similarity=similarity, quality=quality)
    record_frame(organization, door, T0 + timedelta(seconds=20), [(ann, 0.5, 0.6, 0, ""), (ann, 0.85, 0.6, 0, "")])
    seen(organization, ann, door, 65, similarity=0.9, quality=0.3)  # bridges 30 s and 100 s: one visit
    kept = Visit.objects.get()
    recomputed = services.visit_refresh(visit=Visit.objects.get())
    figures = ["started_at", "ended_at", "frames", "sightings_count", "best_sighting_id"]
    assert [getattr(kept, name) for name in figures] == [getattr(recomputed, name) for name in figures]
    assert (kept.frames, kept.sightings_count) == (6, 7)
    mean = (0.7 + 0.95 + 0.8 + 0.6 + 0.5 + 0.85 + 0.9) / 7
    assert kept.confidence == pytest.approx(recomputed.confidence) == pytest.approx(mean)
    assert kept.best_sighting.seen_at == T0  # quality 0.6 four times: the earliest


def test_correcting_a_sighting_moves_it_and_regroups_the_visits(place, django_user_model):
    organization, ann, bob, door, _ = place
    user = django_user_model.objects.create_user("corrector")
    sightings = [seen(organization, ann, door, t) for t in (0, 50, 100)]
    assert Visit.objects.filter(person=ann).count() == 1

    correction = services.sighting_correct(organization=organization, sighting=sightings[1], person=bob, user=user)

    assert (correction.from_person, correction.to_person, correction.user) == (ann, bob, user)
    assert Sighting.objects.get(pk=sightings[1].pk).person == bob
    # Without the middle one, Ann's two sightings are 100 s apart: two visits.
    assert sorted(Visit.objects.filter(person=ann).values_list("frames", flat=True)) == [1, 1]
    assert Visit.objects.get(person=bob).best_sighting_id == sightings[1].pk
    event = AuditEvent.objects.get(action="corrected")
    assert event.detail == {"from_person": ann.pk, "to_person": bob.pk} and event.user == user


def test_correcting_to_unknown_makes_the_face_a_stranger(place):
    organization, ann, _, door, _ = place
    sighting = seen(organization, ann, door, 0)
    services.sighting_correct(organization=organization, sighting=sighting, person=None)
    sighting.refresh_from_db()
    assert sighting.person is None and sighting.visit is None
    assert sighting.stranger == StrangerProfile.objects.get()
    assert not Visit.objects.exists()
    with pytest.raises(Conflict) as raised:
        services.sighting_correct(organization=organization, sighting=sighting, person=None)
    assert raised.value.code == "no_change"
    assert Correction.objects.count() == 1


def test_erasing_a_person_erases_their_visits_and_what_corrections_say_about_them(place):
    organization, ann, bob, door, _ = place
    sightings = [seen(organization, ann, door, t) for t in (0, 10)]
    services.sighting_correct(organization=organization, sighting=sightings[0], person=bob)
    ann.delete()
    assert not Visit.objects.filter(person_id=ann.pk).exists()
    assert not Correction.objects.exists()
    assert Sighting.objects.filter(pk=sightings[0].pk, person=bob).exists()
