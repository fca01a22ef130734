"""The one place where tenant-scoped lookups happen.

Every object fetched on behalf of an organization goes through here, so that
"missing" and "belongs to another organization" give the same NotFound.
"""

from typing import TypeVar

from django.db import models

from apps.core.errors import NotFound

M = TypeVar("M", bound=models.Model)


def scoped(model: type[M], organization) -> models.QuerySet[M]:
    return model.objects.filter(organization=organization)


def get_for_organization(model: type[M], organization, pk, *, field: str | None = None) -> M:
    try:
        return scoped(model, organization).get(pk=int(pk))
    except (model.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"{model._meta.verbose_name.capitalize()} not found.", field=field) from None
