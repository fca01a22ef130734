"""Stranger profiles, promotion and corrections with the real Dlib model on real photos,
run in this process (the worker path is covered end to end elsewhere).

Distances that the tests rely on (Dlib, cosine): id03's img13-img14 0.015, img15 to
them 0.047-0.056; id07 (img22, img23) looks like id01: img22 to id01's img1/img2 0.100
and 0.105, img23 to them 0.108 and 0.117, img22-img23 0.032."""

import pytest

from apps.frames import services as recognition
from apps.gallery.models import FaceImage
from apps.gallery.services import face_image_add, face_image_enroll, person_create
from apps.sightings import services
from apps.sightings.models import Sighting, StrangerProfile, Visit
from tests.faces import photo_bytes

pytestmark = pytest.mark.django_db


def enroll(organization, name: str, *photos: str):
    person = person_create(organization=organization, name=name)
    for photo in photos:
        face_image = face_image_add(person=person, data=photo_bytes(photo))
        assert face_image_enroll(face_image_id=face_image.pk).status == FaceImage.Status.ENROLLED
    return person


def frame(organization, photo: str) -> list[Sighting]:
    created = recognition.frame_create(organization=organization, data=photo_bytes(photo))
    recognition.frame_process(frame_id=created.pk)
    return list(Sighting.objects.filter(frame=created).select_related("person", "stranger"))


def test_unknown_faces_of_one_person_form_one_profile_which_is_promoted_and_then_recognized(org_a):
    organization = org_a[0]
    enroll(organization, "id01", "img1.jpg")
    [a] = frame(organization, "img13.jpg")
    [b] = frame(organization, "img14.jpg")
    [c] = frame(organization, "img20.jpg")
    assert a.person is None and b.person is None and c.person is None
    assert a.stranger == b.stranger != c.stranger
    profile = StrangerProfile.objects.get(pk=a.stranger_id)
    assert (profile.status, profile.sightings_count) == ("open", 2)
    assert (profile.first_seen, profile.last_seen) == (a.seen_at, b.seen_at)

    person = services.stranger_promote(organization=organization, profile=profile, name="Carol")

    photos = FaceImage.objects.filter(person=person)
    assert photos.count() == 2  # both faces; a profile gives at most PROMOTE_PHOTOS
    for photo in photos:
        assert face_image_enroll(face_image_id=photo.pk).status == FaceImage.Status.ENROLLED, photo.detail
    assert set(Sighting.objects.filter(stranger=profile).values_list("person", flat=True)) == {person.pk}
    assert Visit.objects.get(person=person).frames == 2
    profile.refresh_from_db()
    assert (profile.status, profile.person) == ("promoted", person)

    [d] = frame(organization, "img15.jpg")  # a photo of id03 that was never seen
    assert d.person == person
    assert d.stranger is None


def test_dismissed_strangers_keep_their_faces_but_leave_the_list(org_a):
    organization = org_a[0]
    [a] = frame(organization, "img20.jpg")
    services.stranger_dismiss(organization=organization, profile=a.stranger)
    [b] = frame(organization, "img21.jpg")
    assert b.stranger_id == a.stranger_id
    assert StrangerProfile.objects.get().status == "dismissed"


def test_a_corrected_face_stops_its_look_alike_from_being_matched(org_a):
    organization = org_a[0]
    organization.match_thresholds = {"Dlib": 0.13}  # loose enough for id07 to pass as id01
    organization.save()
    id01 = enroll(organization, "id01", "img1.jpg", "img2.jpg")
    enroll(organization, "id03", "img13.jpg")
    [wrong] = frame(organization, "img22.jpg")
    assert wrong.person == id01  # the mistake a user corrects

    services.sighting_correct(organization=organization, sighting=wrong, person=None)

    [look_alike] = frame(organization, "img23.jpg")
    assert look_alike.person is None
    assert look_alike.candidates[0]["person"]["id"] == id01.pk  # still the closest, but not them
    [genuine] = frame(organization, "img4.jpg")
    assert genuine.person == id01

    calibration = recognition.calibration_run(organization=organization)
    assert calibration.summary["corrections"] == 1
    # id01's two photos against id03's template, id03's photo against id01's, and the corrected face.
    assert calibration.impostor_pairs == 2 + 1 + 1
    assert calibration.threshold < 0.100  # below the corrected face's distance to id01
    organization.refresh_from_db()
    assert organization.threshold == 0.13  # the explicit threshold still overrides the target
    assert organization.threshold_source_for("Dlib") == "explicit"
