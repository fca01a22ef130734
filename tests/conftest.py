import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import django.contrib.staticfiles.handlers
import django.test.testcases
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from apps.organizations.services import api_key_create, organization_create
from apps.recognition.pipeline import catalog, weights
from project import embedded, workers
from tests.support import facenet_onnx
from tests.support.receiver import receiver  # noqa: F401  (a fixture: the tests' webhook receiver)

REPO = Path(__file__).resolve().parent.parent

# Django's live test server serves MEDIA_URL straight from disk, around the application.
# Ours must answer /media/ with the application's own view, which checks who may see
# a file (apps.organizations.media), exactly as in production.
django.test.testcases._MediaFilesHandler = lambda application: application
# Nor does it serve static files from the apps' folders under their plain names: the
# pages link to the hashed names of the collected files (debug is off in tests), which
# the application's WhiteNoise serves, as in production.
django.contrib.staticfiles.handlers.StaticFilesHandler = lambda application: application


def pytest_collection_finish(session):
    # The test runner starts the embedded services, unless every test is of the fast tier
    # (make test-fast), or DATABASE_URL / CELERY_BROKER_URL name others.
    if not all(item.get_closest_marker("fast") for item in session.items):
        embedded.ensure_services()


def pytest_unconfigure(config):
    embedded.stop_started()  # only those this run started: a running `make run` stays


@pytest.fixture(scope="session")
def deepface_home(request, tmp_path_factory) -> Path:
    """A weights folder of the test session's own: Dlib's real weights from their
    package, FaceNet's and BlazeFace's as provisioned, and a Facenet (128-d) file with
    the real architecture and made-up values. The made-up file never reaches
    var/deepface, where `make run` would take it for real."""
    home = tmp_path_factory.mktemp("deepface")
    for file_name in weights.PACKAGED:
        weights.provision_file(file_name, home, allow_download=False)
    # The converted weights (FaceNet, BlazeFace, ...) and those used as an npm tarball
    # ships them (liveness) are the real ones `make models` made and verified; making
    # them again would add a minute to every run.
    provisioned = catalog.weights_dir(settings.DEEPFACE_HOME)
    for file_name in [*weights.CONVERTED, *weights.SHIPPED]:
        if not (provisioned / file_name).is_file():
            pytest.fail(f"{file_name} is not in {provisioned}: run `make models` (python manage.py provision_models)")
        weights.install_file(provisioned / file_name, file_name, home)
    facenet128 = catalog.model_spec("Facenet").weight_file
    weights.install_file(made_up_facenet128(request.config.cache), facenet128, home)
    return home


def made_up_facenet128(cache) -> Path:
    """The made-up Facenet file, written once into pytest's cache (91 MB, 2-3 s to
    write) and again only when its generator changes."""
    generator = Path(facenet_onnx.__file__).read_bytes()
    path = cache.mkdir("facenet128") / f"{hashlib.sha256(generator).hexdigest()[:16]}.onnx"
    if not path.is_file():
        for stale in path.parent.iterdir():  # made by an earlier generator
            stale.unlink()
        partial = path.with_suffix(".partial")
        facenet_onnx.write_facenet128_onnx(partial)
        partial.replace(path)
    return path


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session", autouse=True)
def isolated_files(request, media_root):
    # A cache key prefix of this session's own: throttle counters of earlier runs (whose
    # API key ids this run reuses) must not count here.
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}}
    # The tests' webhook receivers listen on 127.0.0.1 (test_webhooks turns the filter on).
    overrides = {"MEDIA_ROOT": media_root, "CACHES": caches, "WEBHOOK_ALLOW_PRIVATE_TARGETS": True}
    # The fast tier (make test-fast) runs without provisioned weights.
    if not all(item.get_closest_marker("fast") for item in request.session.items):
        overrides["DEEPFACE_HOME"] = request.getfixturevalue("deepface_home")
        overrides["STATIC_ROOT"] = request.getfixturevalue("static_root")
    with override_settings(**overrides):
        yield


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    """Static files collected as production collects them: the tests run with debug off,
    and the pages link to the hashed names of WhiteNoise's manifest."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture(scope="session")
def celery_queue() -> str:
    """A queue of this session's own: a `make run` worker on the same broker must not
    take the test's tasks, nor may the test worker take leftovers of earlier runs."""
    from project.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = name
    yield name
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


def database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"]
    netloc = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
    if host.startswith("/"):
        return f"postgresql://{netloc}/{db['NAME']}?host={host}"
    return f"postgresql://{netloc}{host}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(queue: str, log: Path, pool: str = "prefork", **settings_env: str) -> subprocess.Popen:
    """A real Celery worker process on the test database and the real broker, serving
    `queue` with one process of `pool`; returns once it answers a ping."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DEEPFACE_HOME": str(settings.DEEPFACE_HOME),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "RECOGNITION_STALE_FRAME_SECONDS": "300",
        # Tasks the worker itself sends (the calibration after an enrollment) stay on its queue.
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # Webhook retries in well under a second, and few of them.
        "WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "WEBHOOK_MAX_ATTEMPTS": "3",
        # The tests' receivers listen on 127.0.0.1.
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        **settings_env,
    }
    with open(log, "w") as out:
        try:
            return workers.start_worker(queue=queue, node=f"test-{queue}@%h", env=env, stdout=out, pool=pool)
        except workers.WorkerDidNotStart as error:
            pytest.fail(f"{error}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def worker_metrics_url() -> str:
    """Where the session's worker serves its metrics (WORKER_METRICS_PORT)."""
    return f"http://127.0.0.1:{workers.free_port()}/metrics"


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup, django_db_blocker, celery_queue, isolated_files, tmp_path_factory, worker_metrics_url
):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    metrics = {
        "WORKER_METRICS_PORT": worker_metrics_url.split(":")[-1].split("/")[0],
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("worker-metrics")),
    }
    with django_db_blocker.unblock():
        process = start_worker(celery_queue, log, **metrics)
    yield process
    workers.stop_worker(process)
    print(f"\ncelery worker log: {log}")


@pytest.fixture
def make_org():
    def make(slug: str, model: str = "Dlib", detector: str = "dlib"):
        organization = organization_create(slug=slug, recognition_model=model, detector=detector)
        api_key, raw_key = api_key_create(organization=organization, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        return organization, raw_key, client

    return make


@pytest.fixture
def org_a(db, make_org):
    return make_org("org-a")


@pytest.fixture
def org_b(db, make_org):
    return make_org("org-b")


from tests.browser import chromium  # noqa: E402,F401  (a session fixture for the browser tests)
