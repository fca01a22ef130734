"""Importing the settings starts nothing: the entry points start the embedded services."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.fast


def test_importing_the_settings_and_setting_up_django_starts_no_service(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="project.settings")
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "faces"
    # The embedded servers keep their data and sockets under VAR_DIR: none was made.
    assert not (tmp_path / "pgdata").exists() and not (tmp_path / "redis").exists()


def test_env_example_lists_every_variable_the_code_reads():
    read = re.compile(
        r"""(?:env(?:_int|_float|_bool|_list)?\(|environ(?:\.get)?\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    code = {
        name
        for folder in ("project", "apps", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        for name in read.findall(path.read_text())
    }
    listed = set(re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M))
    # Set by the Django and test machinery itself, not by operators.
    internal = {"DJANGO_SETTINGS_MODULE"}
    assert {"DATABASE_URL", "RECOGNITION_MODEL_THREADS", "WEBHOOK_TIMEOUT_SECONDS"} <= code  # the scan sees them
    assert code - internal - listed == set()


def test_every_scheduled_task_is_one_the_workers_know():
    from django.apps import apps
    from django.conf import settings

    from project.celery import app

    for config in apps.get_app_configs():  # as the worker's autodiscovery does
        if importlib.util.find_spec(f"{config.name}.tasks"):
            importlib.import_module(f"{config.name}.tasks")
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "apps.core.tasks.orphaned_files_sweep_task" in scheduled
    assert scheduled - set(app.tasks) == set()
