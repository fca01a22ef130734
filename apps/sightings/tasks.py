from celery import shared_task

from apps.sightings import services


@shared_task
def purge_expired() -> dict:
    # A platform task: it enters each organization's tenant context itself.
    return services.retention_purge_all()
