"""The gallery services, one module per job; this package's names are their public API."""

from apps.gallery.services.consent import (
    consent_given,
    consent_record,
    consent_recorded_audit,
    consent_require,
)
from apps.gallery.services.enrollment import (
    NEAR_DUPLICATE_FRACTION,
    REJECTION_MESSAGES,
    enrollment_warnings,
    face_image_add,
    face_image_delete,
    face_image_embed,
    face_image_enqueue,
    face_image_enroll,
    face_images_requeue_stale,
    person_create,
    person_delete,
    person_update,
)
from apps.gallery.services.groups import group_add_people, group_remove_people
from apps.gallery.services.imports import (
    IMPORTABLE,
    gallery_import_run,
    gallery_import_start,
)
from apps.gallery.services.model_change import (
    OLD_EMBEDDINGS_GRACE_SECONDS,
    gallery_old_embeddings_remove,
    gallery_reembed_run,
    gallery_reembed_start,
)

__all__ = [
    "consent_given",
    "consent_record",
    "consent_recorded_audit",
    "consent_require",
    "group_add_people",
    "group_remove_people",
    "IMPORTABLE",
    "NEAR_DUPLICATE_FRACTION",
    "OLD_EMBEDDINGS_GRACE_SECONDS",
    "REJECTION_MESSAGES",
    "enrollment_warnings",
    "face_image_add",
    "face_image_delete",
    "face_image_embed",
    "face_image_enqueue",
    "face_image_enroll",
    "face_images_requeue_stale",
    "gallery_import_run",
    "gallery_import_start",
    "gallery_old_embeddings_remove",
    "gallery_reembed_run",
    "gallery_reembed_start",
    "person_create",
    "person_delete",
    "person_update",
]
