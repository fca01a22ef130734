"""Thin tasks: each calls the service it is named after, imported inside the function."""

from celery import shared_task


@shared_task
def retention_purge_all_task() -> dict:
    # A platform task: it enters each organization's tenant context itself.
    from apps.sightings.services import retention_purge_all

    return retention_purge_all()


@shared_task
def visits_close_all_task() -> dict:
    # A platform task: it enters each organization's tenant context itself.
    from apps.sightings.services import visits_close_all

    return visits_close_all()
