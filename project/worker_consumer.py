"""The Celery worker's consumer, mended for one fault of Celery 5.7.0 with Redis
(settings.CELERY_WORKER_CONSUMER points here).

When the broker connection is lost, Celery 5.7.0 first collects the connection (which
detaches its transport) and then closes it. If the worker holds a message it has not
acknowledged yet (a task waiting for its countdown, a late-acknowledged task running),
closing the channel tries to put that message back through the detached transport and
raises AttributeError ("'NoneType' object has no attribute 'hostname'"), which Celery
does not expect there: the worker exits with "Unrecoverable error". Celery 5.6 did not
close the connection, but then stopped consuming after Redis came back; 5.7.0 is the
version that reconnects, so it stays, with this mend.

Nothing is lost by not putting the message back at that moment: Redis was unreachable
anyway, and Redis keeps every unacknowledged message, which any worker restores after
CELERY_VISIBILITY_TIMEOUT. Written by hand because no release of Celery or kombu has
the fix yet; tested in tests/api/test_outages.py."""

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc):
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_leaving_unacknowledged_to_redis():
                try:
                    close()
                except AttributeError:
                    logger.warning(
                        "the lost broker connection could not put its unacknowledged messages back; "
                        "Redis restores them after the visibility timeout"
                    )

            connection.close = close_leaving_unacknowledged_to_redis
        super().on_connection_error_after_connected(exc)
