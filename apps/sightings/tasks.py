from celery import shared_task

from apps.sightings import services


@shared_task
def purge_expired() -> dict:
    # A platform task: it enters each organization's tenant context itself.
    return services.retention_purge_all()


@shared_task
def close_visits() -> dict:
    # A platform task: it enters each organization's tenant context itself.
    return services.visits_close_all()
