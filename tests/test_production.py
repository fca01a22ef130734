"""The production configuration, for real: gunicorn (project/gunicorn.conf.py) with debug
off, on the test database, its static files collected by `collectstatic` and served by
WhiteNoise. A browser signs in and loads the pages with every stylesheet and script
they reference; a camera posts a frame; Prometheus reads the metrics. The settings for
TLS are checked on the wire and by `manage.py check --deploy`."""

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.organizations.models import Membership
from project import workers
from tests.browser import Screenshots
from tests.conftest import REPO, database_url
from tests.faces import photo_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET_KEY = "production-smoke-test-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
METRICS_TOKEN = "smoke-metrics-token"
CONTENT_TYPES = {"stylesheet": "text/css", "script": "text/javascript"}


@pytest.fixture
def queue_of_its_own():
    """Where the production server sends its tasks: not the session's worker's queue,
    nor the default one of a `make run` worker on the same broker. Deleted after."""
    from project.celery import app

    name = f"production-{workers.free_port()}"
    yield name
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


def production_env(**extra: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PROMETHEUS_MULTIPROC_DIR", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        STATIC_ROOT=str(settings.STATIC_ROOT),
        DEEPFACE_HOME=str(settings.DEEPFACE_HOME),
        METRICS_TOKEN=METRICS_TOKEN,
        **extra,
    )
    return env


@contextmanager
def production_server(tmp_path: Path, **extra: str):
    """gunicorn as `make serve` starts it (2 processes); yields its URL."""
    port = workers.free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            workers.web_command(bind=f"127.0.0.1:{port}", processes=2),
            cwd=REPO,
            env=production_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"gunicorn exited:\n{log.read_text()[-3000:]}"
            try:
                requests.get(f"{url}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"gunicorn did not answer:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def assets_of(page) -> dict[str, list[str]]:
    return page.evaluate(
        """() => ({
            stylesheet: [...document.querySelectorAll('link[rel=stylesheet]')].map(link => link.href),
            script: [...document.querySelectorAll('script[src]')].map(script => script.src),
        })"""
    )


def test_the_pages_load_with_their_assets_a_frame_is_accepted_and_metrics_read(
    make_org, chromium, tmp_path, queue_of_its_own
):
    organization, api_key, _ = make_org("production")
    owner = User.objects.create_user("prod-owner", password="secret-pw", is_staff=True)
    Membership.objects.create(organization=organization, user=owner, role=Membership.Role.OWNER)
    with production_server(tmp_path, CELERY_TASK_DEFAULT_QUEUE=queue_of_its_own) as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        failed = []
        page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
        shot = Screenshots(page, "production")
        try:
            page.goto(f"{url}/accounts/login/")
            page.fill("input[name=username]", "prod-owner")
            page.fill("input[name=password]", "secret-pw")
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Dashboard")
            for path, visible in [
                ("/admin/", "#site-name"),
                ("/reports/", "h1"),
                ("/capture/", "h1"),
                ("/api/docs/", ".swagger-ui .info .title"),
            ]:
                page.goto(f"{url}{path}", wait_until="networkidle")
                expect(page.locator(visible).first).to_be_visible()
                shot(path.strip("/").replace("/", "-"))
                assets = assets_of(page)
                assert assets["stylesheet"] or path == "/api/docs/" and assets["script"], (path, assets)
                for kind, links in assets.items():
                    for link in links:
                        assert "/static/" in link, link
                        # Hashed names (WhiteNoise's manifest), cached for good.
                        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", link), link
                        answer = page.request.get(link)
                        assert answer.status == 200, link
                        assert answer.headers["content-type"].startswith(CONTENT_TYPES[kind]), (link, answer.headers)
                        assert "max-age=315360000" in answer.headers["cache-control"], link
                # Every stylesheet was parsed into rules, not just fetched.
                assert page.evaluate("() => [...document.styleSheets].every(sheet => sheet.cssRules.length > 0)")
            assert failed == []
        finally:
            page.close()

        accepted = requests.post(
            f"{url}/api/v1/frames/",
            headers={"Authorization": f"Api-Key {api_key}"},
            files={"image": ("a.jpg", photo_bytes("img1.jpg"), "image/jpeg")},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text

        assert requests.get(f"{url}/metrics", timeout=30).status_code == 401
        metrics = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'faces_frames_unfinished{organization="production",status="queued"} 1.0' in text
    # Request latency by view and status, summed over gunicorn's two processes.
    frames_view = re.search(
        r'django_http_requests_latency_seconds_by_view_method_count\{method="POST",view="frames"\} (\d+)', text
    )
    assert frames_view and float(frames_view.group(1)) == 1.0, text[:3000]
    assert re.search(r'django_http_responses_total_by_status_view_method_total\{.*status="202".*\}', text)


def test_behind_tls_plain_http_is_redirected_and_cookies_and_hsts_are_for_https_only(tmp_path):
    with production_server(tmp_path, DJANGO_HTTPS="true") as url:
        plain = requests.get(f"{url}/reports/", allow_redirects=False, timeout=30)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        # Probes and Prometheus inside the network keep plain http.
        assert requests.get(f"{url}/healthz", allow_redirects=False, timeout=30).status_code in (200, 503)
        https = {"X-Forwarded-Proto": "https"}  # as the TLS proxy in front says it
        login = requests.get(f"{url}/accounts/login/", headers=https, allow_redirects=False, timeout=30)
        assert login.status_code == 200
        assert "max-age=31536000" in login.headers["Strict-Transport-Security"]
        assert "preload" in login.headers["Strict-Transport-Security"]
        csrf = next(cookie for cookie in login.cookies if cookie.name == "csrftoken")
        assert csrf.secure


def test_check_deploy_reports_nothing_in_the_documented_production_configuration():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_env(DJANGO_HTTPS="true"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_make_serve_runs_web_worker_and_beat_which_recognize_a_frame_and_stop_together(
    make_org, tmp_path, queue_of_its_own
):
    """`python -m project.serve --production`, what `make serve` runs after collectstatic:
    gunicorn, a worker and the beat, each a process of its own; Ctrl-C stops them all."""
    _, api_key, _ = make_org("serve")
    port = workers.free_port()
    env = production_env(
        WEB_BIND=f"127.0.0.1:{port}", CELERY_TASK_DEFAULT_QUEUE=queue_of_its_own, VAR_DIR=str(tmp_path)
    )
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "project.serve", "--production"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:  # healthy: the database, the broker and a worker that answers
            assert serve.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        answer = requests.post(
            f"{url}/api/v1/frames/",
            params={"wait": "30"},
            headers={"Authorization": f"Api-Key {api_key}"},
            files={"image": ("a.jpg", photo_bytes("img1.jpg"), "image/jpeg")},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["status"] == "done", answer.text
        children = psutil.Process(serve.pid).children()
        commands = [" ".join(child.cmdline()) for child in children]
        assert sum("gunicorn" in c for c in commands) == 1, commands
        assert sum(" worker" in c for c in commands) == 1 and sum(" beat" in c for c in commands) == 1, commands
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C
        serve.wait(timeout=60)
    assert not [child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert "Stopped." in log.read_text()
