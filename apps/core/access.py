"""The one place where tenant-scoped lookups happen.

Every object fetched on behalf of an organization goes through here, so that
"missing" and "belongs to another organization" give the same NotFound.
"""

from typing import TypeVar

from django.db import models

from apps.core.errors import NotFound

M = TypeVar("M", bound=models.Model)


def scoped(model: type[M] | models.QuerySet[M], organization) -> models.QuerySet[M]:
    """A model's rows (or a queryset's, e.g. with select_related) of one organization."""
    rows = model if isinstance(model, models.QuerySet) else model.objects
    return rows.filter(organization=organization)


def get_for_organization(model: type[M] | models.QuerySet[M], organization, pk, *, field: str | None = None) -> M:
    rows = scoped(model, organization)
    try:
        return rows.get(pk=int(pk))
    except (rows.model.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"{rows.model._meta.verbose_name.capitalize()} not found.", field=field) from None
