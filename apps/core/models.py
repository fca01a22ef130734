from django.db import models


class TenantOwned(models.Model):
    """A row that belongs to exactly one organization; the key is indexed."""

    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=True,
    )

    class Meta:
        abstract = True
