import subprocess
import sys

import pytest

from tests.conftest import REPO

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_pipeline_imports_neither_django_nor_celery():
    code = (
        "import sys\n"
        "from apps.recognition.pipeline import catalog, engine, images, match, weights\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery'))\n"
        "print(leaked)\n"
        "sys.exit(1 if leaked else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exactly_one_opencv_distribution_is_installed():
    # Two cv2 distributions overwrite each other's files; deepface needs the contrib one.
    from importlib.metadata import distributions

    names = sorted(
        {d.metadata["Name"].lower() for d in distributions() if d.metadata["Name"].lower().startswith("opencv")}
    )
    assert names == ["opencv-contrib-python-headless"]
