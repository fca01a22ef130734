"""Running a benchmark command as its user would, on the shared photos."""

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.faces import faces_dir


def run_benchmark_command(module: str, *options: str) -> None:
    """`python -m <module> <options>`; fails the test with the command's output."""
    result = subprocess.run(
        [sys.executable, "-m", module, *options],
        cwd=REPO,
        env={**os.environ, "FACES_DIR": str(faces_dir())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
