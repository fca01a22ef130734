from celery import shared_task

from apps.webhooks import services


@shared_task(bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self, delivery_id: int, organization_id: int | None = None) -> None:
    # The service counts attempts and gives up after WEBHOOK_MAX_ATTEMPTS itself.
    delay = services.delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)
