"""Two organizations, each with an owner, an admin, a viewer, an API key, a camera, a
person with an enrolled photo, a frame and a sighting with a crop, all with real files."""

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone

from apps.gallery.models import FaceEmbedding, FaceImage, Person
from apps.organizations.models import Camera, Membership
from apps.organizations.services import api_key_create, organization_create
from apps.recognition.models import Frame
from apps.sightings.models import Sighting
from tests.faces import photo_bytes
from tests.factories import FrameFactory, SightingFactory


@dataclass
class Tenant:
    organization: object
    owner: User
    admin: User
    viewer: User
    raw_key: str
    camera: Camera
    person: Person
    face_image: FaceImage
    frame: Frame
    sighting: Sighting

    def files(self) -> list[str]:
        return [self.face_image.image.path, self.frame.image.path, self.sighting.crop.path]


def make_tenant(slug: str, person_name: str, camera_name: str, photo: str = "img1.jpg", seen_at=None) -> Tenant:
    organization = organization_create(slug=slug, name=slug.upper(), recognition_model="Dlib", detector="dlib")
    users = {}
    for role in ("owner", "admin", "viewer"):
        user = User.objects.create_user(f"{slug}-{role}", password="pw", is_staff=role != "viewer")
        Membership.objects.create(organization=organization, user=user, role=role)
        users[role] = user
    _, raw_key = api_key_create(organization=organization, name=f"{slug} key")
    camera = Camera.objects.create(organization=organization, name=camera_name)
    person = Person.objects.create(organization=organization, name=person_name)
    face_image = FaceImage(organization=organization, person=person, status=FaceImage.Status.ENROLLED)
    face_image.image.save(f"{slug}.jpg", ContentFile(photo_bytes(photo)), save=False)
    face_image.save()
    FaceEmbedding.objects.create(
        organization=organization,
        face_image=face_image,
        person=person,
        model_name="Dlib",
        dimensions=128,
        detector="dlib",
        embedding=np.full(128, 0.1, dtype=np.float32),
        box_x=0,
        box_y=0,
        box_w=10,
        box_h=10,
    )
    seen_at = seen_at or timezone.now() - timedelta(minutes=5)
    frame = FrameFactory.build(organization=organization, camera=camera, captured_at=seen_at)
    frame.image.save(f"{slug}-frame.jpg", ContentFile(photo_bytes(photo)), save=False)
    frame.save()
    sighting = SightingFactory.build(organization=organization, frame=frame, person=person, box_w=10, box_h=10)
    sighting.crop.save(f"{slug}-crop.jpg", ContentFile(photo_bytes(photo)), save=False)
    sighting.save()
    return Tenant(
        organization,
        users["owner"],
        users["admin"],
        users["viewer"],
        raw_key,
        camera,
        person,
        face_image,
        frame,
        sighting,
    )
