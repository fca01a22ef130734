"""Thin tasks: each calls the service it is named after, imported inside the function."""

from celery import shared_task


@shared_task(bind=True, max_retries=None, acks_late=True)
def delivery_attempt_task(self, delivery_id: int, organization_id: int | None = None) -> None:
    # The service counts attempts and gives up after WEBHOOK_MAX_ATTEMPTS itself.
    from apps.webhooks.services import delivery_attempt

    delay = delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)
