"""The worker's recorder: frames' results stored on a thread of their own, in order, in
the frame's tenant context, once the next frame's models run; and nothing lost when a
worker stops, nor when its pool process is killed while a result waits."""

import json
import os
import signal
import threading
import time

import psutil
import pytest
from django.db import connection

from apps.core.tenancy import tenant_context
from apps.frames import services
from apps.frames.recorder import Recorder
from apps.recognition.models import Frame
from project.workers import stop_worker
from tests.conftest import start_worker
from tests.faces import photo_bytes
from tests.support.database import database_admin
from tests.worker import wait_for


def close_connection() -> None:
    connection.close()  # the recorder thread's own, before the test database goes


@pytest.mark.django_db(transaction=True)
def test_jobs_run_in_order_on_their_own_thread_in_the_submitters_tenant_context(org_a):
    organization = org_a[0]
    recorder = Recorder(wait_for_models=0)
    seen = []

    def job(number: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_setting('app.organization_id', true)")
            seen.append((number, threading.current_thread().name, *cursor.fetchone()))

    with tenant_context(organization.pk):
        for number in range(5):
            recorder.submit(job, number=number)
    recorder.submit(job, number=5)  # a platform job: no tenant context
    recorder.submit(close_connection)
    recorder.flush()
    tenant = [(n, "recorder", "faces_tenant", str(organization.pk)) for n in range(5)]
    assert seen[:5] == tenant
    assert seen[5][:2] == (5, "recorder") and seen[5][2] != "faces_tenant"


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_connection_postgresql_terminates_is_run_again_on_a_new_one(org_a):
    """The fault benchmark's connections_kill: a result being written when PostgreSQL
    drops the recorder's connection is stored on a new one (it waited for the
    stale-frame sweep, minutes, before), in the same tenant context."""
    organization = org_a[0]
    recorder = Recorder(wait_for_models=0)
    attempts = []

    def job() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), current_setting('app.organization_id', true)")
            pid, tenant = cursor.fetchone()
            attempts.append(tenant)
            if len(attempts) == 1:
                with database_admin() as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                cursor.execute("SELECT 1")  # the connection is gone: OperationalError

    with tenant_context(organization.pk):
        recorder.submit(job)
    recorder.submit(close_connection)
    recorder.flush()
    assert attempts == [str(organization.pk)] * 2


def test_a_result_waits_for_the_next_frames_models_or_for_its_time():
    recorder = Recorder(wait_for_models=30)
    stored = threading.Event()
    recorder.submit(stored.set)
    assert not stored.wait(0.3)  # the model thread is handing over to the next frame
    recorder.models_running()
    assert stored.wait(2)

    quick = Recorder(wait_for_models=0.05)
    stored.clear()
    started = time.monotonic()
    quick.submit(stored.set)
    assert stored.wait(2)  # no next frame: stored after its wait
    assert time.monotonic() - started >= 0.05


def test_a_failing_job_is_logged_and_the_next_ones_still_run(caplog):
    recorder = Recorder(wait_for_models=0)
    done = []

    def broken() -> None:
        raise RuntimeError("disk full")

    recorder.submit(broken)
    recorder.submit(lambda: done.append(1))
    recorder.flush()
    assert done == [1]
    assert "the recorder failed to run broken" in caplog.text and "disk full" in caplog.text


def test_flush_stores_what_waits_at_once():
    recorder = Recorder(wait_for_models=30)
    stored = threading.Event()
    recorder.submit(stored.set)
    started = time.monotonic()
    recorder.flush()
    assert stored.is_set() and time.monotonic() - started < 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_worker_that_stops_stores_the_results_it_holds(pool, celery_queue, make_org, tmp_path):
    """A worker's last result waits for a next frame that does not come (30 s here); a
    warm shutdown stores it before the process exits."""
    from project.celery import app

    organization, _, _ = make_org(f"stopping-{pool}")
    queue = f"{celery_queue}-stopping-{pool}"
    worker = start_worker(queue, tmp_path / "worker.log", pool, RECOGNITION_RECORDER_WAIT_SECONDS="30")
    app.conf.task_default_queue = queue
    try:
        frame = services.frame_create(organization=organization, data=photo_bytes("img20.jpg"))
        deadline = time.monotonic() + 60
        while Frame.objects.get(pk=frame.pk).status == Frame.Status.QUEUED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Frame.objects.get(pk=frame.pk).status == Frame.Status.PROCESSING  # its models are running
        stopped = time.monotonic()
        stop_worker(worker)
        assert worker.returncode == 0 and time.monotonic() - stopped < 20
        frame.refresh_from_db()
        assert frame.status == Frame.Status.DONE, (tmp_path / "worker.log").read_text()[-3000:]
        assert frame.sightings.count() == 1
    finally:
        app.conf.task_default_queue = celery_queue
        stop_worker(worker)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def unacknowledged(queue: str) -> int:
    """Messages of this queue that a worker took and has not acknowledged (kombu's Redis
    transport keeps them in one hash, each with its routing key)."""
    from project.celery import app

    with app.connection_for_read() as conn:
        values = conn.default_channel.client.hvals("unacked")
    return sum(json.loads(value)[2] == queue for value in values)


@pytest.mark.django_db(transaction=True)
def test_a_frame_whose_pool_process_is_killed_before_its_result_is_stored_is_processed_again_at_once(
    celery_queue, make_org, tmp_path
):
    """The frame's models are done and its message acknowledged, but its result waits on
    the recorder (10 s here, for a next frame that does not come) when the pool process
    is killed. The broker will not deliver it again; the process that replaces the dead
    one queues it again as it starts, instead of after RECOGNITION_STALE_FRAME_SECONDS."""
    from project.celery import app

    organization, _, _ = make_org("killed-recorder")
    queue = f"{celery_queue}-killed"
    log = tmp_path / "worker.log"
    worker = start_worker(queue, log, RECOGNITION_RECORDER_WAIT_SECONDS="10")
    app.conf.task_default_queue = queue
    try:
        frame = services.frame_create(organization=organization, data=photo_bytes("img20.jpg"))
        wait_for(lambda: Frame.objects.get(pk=frame.pk).status == Frame.Status.PROCESSING, "the frame's models", 60)
        wait_for(lambda: unacknowledged(queue) == 0, "its message to be acknowledged", 10)
        frame.refresh_from_db()
        assert frame.status == Frame.Status.PROCESSING  # its result still waits
        [pool_process] = psutil.Process(worker.pid).children()
        assert frame.worker.endswith(f":{pool_process.pid}")
        os.kill(pool_process.pid, signal.SIGKILL)

        # Well before the worker's RECOGNITION_STALE_FRAME_SECONDS (300).
        wait_for(lambda: Frame.objects.get(pk=frame.pk).status == Frame.Status.DONE, "the frame, again", 90)
        frame.refresh_from_db()
        assert frame.attempts == 2 and not frame.worker.endswith(f":{pool_process.pid}")
        assert frame.sightings.count() == 1
        assert "re-queued 1 frames held by a process that died" in log.read_text()
    finally:
        app.conf.task_default_queue = celery_queue
        stop_worker(worker)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
