"""The web tier through a database or a broker that goes away: the live server over
real HTTP, its connections terminated by PostgreSQL itself (pg_terminate_backend), the
database refusing new ones, the embedded Redis stopped. No mock: the faults are real."""

import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from apps.core.tenancy import tenant_context
from apps.frames.services import frame_create, frames_requeue_stale
from apps.recognition.models import Frame
from project import embedded
from tests.faces import photo_bytes
from tests.support.database import database_admin, database_closed, terminate_the_others
from tests.worker import wait_for


def blocked_on_a_lock(cursor, count: int) -> list[int]:
    """The server processes of this database waiting on a lock, once there are `count`."""
    deadline = time.monotonic() + 20
    while True:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' ORDER BY backend_start",
            [connection.settings_dict["NAME"]],
        )
        pids = [row[0] for row in cursor.fetchall()]
        if len(pids) >= count:
            return pids
        assert time.monotonic() < deadline, f"{len(pids)} of {count} requests got as far as the lock"
        time.sleep(0.05)


@contextmanager
def frames_locked(mode: str = "EXCLUSIVE"):
    """A transaction of the test's holds the frame table: against inserts (EXCLUSIVE), so
    a request can be caught half-way, between its first write and the frame's; against
    reads too (ACCESS EXCLUSIVE)."""
    with database_admin() as lock:
        lock.execute(f"BEGIN; LOCK TABLE recognition_frame IN {mode} MODE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")


def in_background(answers: dict, name: str, send) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.update({name: send()}))
    thread.start()
    return thread


def worker_node(celery_queue: str) -> str:
    """The session's worker, as Celery names it (tests/conftest.py)."""
    return f"test-{celery_queue}@{socket.gethostname()}"


def worker_answers(celery_queue: str) -> bool:
    from project.celery import app

    node = worker_node(celery_queue)
    try:
        return any(node in reply for reply in app.control.ping(destination=[node], timeout=1))
    except Exception:  # the test's own broker connection may meet the one Redis closed
        return False


def post_frame(live_server, key: str, idempotency_key: str | None = None, **params) -> requests.Response:
    return requests.post(
        f"{live_server.url}/api/v1/frames/",
        params=params,
        headers={"Authorization": f"Api-Key {key}"} | ({"Idempotency-Key": idempotency_key} if idempotency_key else {}),
        files={"image": ("a.jpg", photo_bytes("img1.jpg"), "image/jpeg")},
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_a_waiting_request_rides_out_its_connection_being_terminated(live_server, make_org):
    organization, key, _ = make_org("outage-wait")
    answers = {}
    waiter = threading.Thread(target=lambda: answers.update(wait=post_frame(live_server, key, wait=20)))
    waiter.start()
    deadline = time.monotonic() + 20
    while not Frame.objects.filter(organization=organization).exists():
        assert time.monotonic() < deadline, "the frame was never stored"
        time.sleep(0.05)
    time.sleep(0.5)  # the request is waiting on its connection now
    with database_admin() as cursor:
        assert terminate_the_others(cursor) >= 1
    time.sleep(1.0)  # the waiter notices, opens a new connection and listens again
    frame = Frame.objects.get(organization=organization)
    Frame.objects.filter(pk=frame.pk).update(status=Frame.Status.DONE, finished_at=timezone.now())
    waiter.join(30)
    answer = answers["wait"]
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == frame.pk and answer.json()["status"] == "done"
    assert Frame.objects.filter(organization=organization).count() == 1
    # The next request finds its dead connection by the health check and opens another.
    assert post_frame(live_server, key).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_connections_answers_503_with_retry_after(live_server, make_org):
    organization, key, _ = make_org("outage-down")
    assert post_frame(live_server, key).status_code == 202
    with database_closed():
        started = time.monotonic()
        answer = post_frame(live_server, key)
        assert time.monotonic() - started < 10
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "database_unavailable"
    # Back: the same server answers again, and nothing was stored twice or half.
    assert post_frame(live_server, key).status_code == 202
    assert Frame.objects.filter(organization=organization).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_answers_503_and_a_frame_stored_meanwhile_is_processed_after_it(
    celery_worker, make_org, settings
):
    """Redis stopped for real: the API answers 503 and stores nothing; a frame that was
    stored before its task could be sent (the outage began in between) stays queued,
    and once Redis is back the stale-frame sweep queues it and the same worker, which
    reconnected on its own, processes it."""
    organization, _, client = make_org("outage-broker")
    with embedded.redis_stopped():
        answer = client.post(
            "/api/v1/frames/",
            {"image": SimpleUploadedFile("a.jpg", photo_bytes("img1.jpg"), content_type="image/jpeg")},
            format="multipart",
        )
        assert answer.status_code == 503, answer.content
        assert answer["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "broker_unavailable"
        assert not Frame.objects.exists()
        with tenant_context(organization.pk):
            frame = frame_create(organization=organization, data=photo_bytes("img1.jpg"))
        assert Frame.objects.get(pk=frame.pk).status == Frame.Status.QUEUED
    settings.RECOGNITION_STALE_FRAME_SECONDS = 0
    assert frames_requeue_stale() == 1
    wait_for(lambda: Frame.objects.get(pk=frame.pk).status == Frame.Status.DONE, "the frame, after the outage", 90)


@pytest.mark.django_db(transaction=True)
def test_frames_the_worker_takes_while_the_database_is_away_are_processed_once_it_is_back(
    celery_worker, celery_queue, make_org
):
    """The database refuses connections while frames wait in the queue: the worker takes
    each, cannot read it, and tries again after a backoff; once the database is back
    every frame is done within seconds. (Before, each message was dropped on the
    first error and its frame stayed queued until the stale sweep, 5 minutes later:
    the fault benchmark's database restart showed 20 such frames.)"""
    from apps.frames.tasks import frame_process_task

    organization, _, _ = make_org("outage-db-worker")
    with embedded.redis_stopped(), tenant_context(organization.pk):  # stored, not queued yet
        frames = [frame_create(organization=organization, data=photo_bytes("img1.jpg")) for _ in range(3)]
    wait_for(lambda: worker_answers(celery_queue), "the worker, back on Redis", 30, interval=0.5)
    with database_closed():  # the worker's connections dropped too
        for frame in frames:
            frame_process_task.delay(frame.pk, organization_id=organization.pk)
        time.sleep(3)  # the worker takes them and meets the closed database
    pks = [frame.pk for frame in frames]
    done = Frame.objects.filter(pk__in=pks, status=Frame.Status.DONE)
    wait_for(lambda: done.count() == 3, "the frames, once the database is back", 60)
    assert celery_worker.poll() is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_holding_a_delayed_task_rides_out_a_broker_restart(celery_worker, celery_queue, make_org):
    """A worker holds a task with a countdown (the calibration 5 s after an enrollment,
    a webhook's next attempt) when Redis goes away: it reconnects like any other and
    goes on processing frames. Celery 5.7.0's own consumer exits here ("Unrecoverable
    error: AttributeError: 'NoneType' object has no attribute 'hostname'", while putting
    the task back); project/worker_consumer.py mends it."""
    from apps.gallery.tasks import face_images_requeue_stale_task
    from project.celery import app

    node = worker_node(celery_queue)
    face_images_requeue_stale_task.apply_async(countdown=3600)  # a no-op sweep, whenever it runs

    def held() -> bool:
        return bool((app.control.inspect(destination=[node], timeout=2).scheduled() or {}).get(node))

    wait_for(held, "the worker to hold the delayed task", 30)
    with embedded.redis_stopped():
        time.sleep(2)
    time.sleep(3)  # the worker notices, and reconnects (or, as 5.7.0 did, exits)
    assert celery_worker.poll() is None, "the worker exited when Redis went away"
    organization, _, client = make_org("outage-delayed")

    def posted() -> bool:  # the test's own broker connection may first meet the one Redis closed
        image = SimpleUploadedFile("a.jpg", photo_bytes("img1.jpg"), content_type="image/jpeg")
        return client.post("/api/v1/frames/", {"image": image}, format="multipart").status_code == 202

    wait_for(posted, "a frame accepted after the restart", 10, interval=0.5)
    frame = Frame.objects.get(organization=organization)
    wait_for(lambda: Frame.objects.get(pk=frame.pk).status == Frame.Status.DONE, "the frame, after the restart", 90)
    assert celery_worker.poll() is None


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_with_retry_after_while_the_broker_is_down(celery_worker, client):
    assert client.get("/healthz").status_code == 200  # its broker connection is pooled now
    with embedded.redis_stopped():
        answer = client.get("/healthz")
    assert answer.status_code == 503 and answer["Retry-After"] == "5"
    assert answer.json()["broker"]["ok"] is False and answer.json()["database"]["ok"] is True
    # Healthy again within seconds (a probe may first meet the connection Redis closed).
    wait_for(lambda: client.get("/healthz").status_code == 200, "healthz after the restart", timeout=10, interval=0.5)


@pytest.mark.django_db(transaction=True)
def test_a_request_cut_off_half_way_leaves_nothing_and_its_retry_is_stored(live_server, make_org):
    """Its database connection terminated between the key's write and the frame's: the
    retry with the same key must store the frame, not be told forever that the first
    attempt is still running."""
    organization, key, _ = make_org("outage-key")
    answers = {}
    with database_admin() as watch:
        with frames_locked():
            first = in_background(answers, "first", lambda: post_frame(live_server, key, "cut-off"))
            [pid] = blocked_on_a_lock(watch, 1)
            watch.execute("SELECT pg_terminate_backend(%s)", [pid])
            first.join(30)
    assert answers["first"].status_code == 503, answers["first"].text
    assert not Frame.objects.filter(organization=organization).exists()
    retry = post_frame(live_server, key, "cut-off")
    assert retry.status_code == 202, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert Frame.objects.filter(organization=organization).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_retry_sent_while_the_first_attempt_runs_waits_for_it_and_nothing_is_stored_twice(live_server, make_org):
    organization, key, _ = make_org("outage-retry")
    answers = {}
    with database_admin() as watch:
        with frames_locked():
            first = in_background(answers, "first", lambda: post_frame(live_server, key, "twice"))
            blocked_on_a_lock(watch, 1)
            retry = in_background(answers, "retry", lambda: post_frame(live_server, key, "twice"))
            blocked_on_a_lock(watch, 2)  # the retry waits on the first attempt's key
        first.join(30)
        retry.join(30)
    assert answers["first"].status_code == answers["retry"].status_code == 202, answers["retry"].text
    assert answers["retry"].json()["id"] == answers["first"].json()["id"]
    assert answers["retry"].headers["Idempotent-Replayed"] == "true"
    assert Frame.objects.filter(organization=organization).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_terminated_in_the_middle_of_a_read_answers_503(live_server, make_org):
    """No transaction is open to roll back: the request's organization context is left on
    a dead connection, and leaving it must not turn the 503 into a 500."""
    organization, key, _ = make_org("outage-read")
    frame = post_frame(live_server, key).json()
    answers = {}
    with database_admin() as watch:
        with frames_locked("ACCESS EXCLUSIVE"):
            read = in_background(
                answers,
                "read",
                lambda: requests.get(
                    f"{live_server.url}/api/v1/frames/{frame['id']}/",
                    headers={"Authorization": f"Api-Key {key}"},
                    timeout=60,
                ),
            )
            [pid] = blocked_on_a_lock(watch, 1)
            watch.execute("SELECT pg_terminate_backend(%s)", [pid])
            read.join(30)
    assert answers["read"].status_code == 503, answers["read"].text
    assert answers["read"].headers["Retry-After"] == "5"
    assert answers["read"].json()["error"]["code"] == "database_unavailable"
