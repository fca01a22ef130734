from django.db import models

from apps.core.models import TenantOwned
from apps.gallery.models import FaceImage
from apps.recognition.models import Frame


class IdempotentRequest(TenantOwned):
    """A request sent with an Idempotency-Key and the object it made, written in the
    same transaction as that object (see apps/api/idempotency.py)."""

    key = models.CharField(max_length=200)
    # Method and route: the same key may be used on different operations.
    operation = models.CharField(max_length=200)
    # Hash of the request's content: the same key with other content is a client error.
    fingerprint = models.CharField(max_length=64)
    # What the request made; one of these per operation. Deleting it forgets the key.
    frame = models.ForeignKey(Frame, null=True, on_delete=models.CASCADE, related_name="+")
    face_image = models.ForeignKey(FaceImage, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "operation", "key"], name="one_answer_per_idempotency_key")
        ]
