"""The fault benchmark's short version: two cameras for under a minute against a web
server, a worker and beat of their own, one pool process killed with SIGKILL mid-frame
and every database connection terminated. Real processes, real faults: nothing
accepted may be lost or stored twice, and no answer may be a 5xx other than a 503
with Retry-After. (The whole run: `python -m benchmarks.faults`, README "Faults".)"""

import json
import os
import subprocess
import sys

from tests.conftest import REPO
from tests.faces import faces_dir


def test_frames_survive_a_killed_pool_process_and_terminated_connections(tmp_path):
    command = [sys.executable, "-m", "benchmarks.faults", "--cameras", "2", "--rate", "1", "--lead", "2"]
    command += ["--quiet", "8", "--phases", "pool_kill,connections_kill", "--drain", "120", "--out", str(tmp_path)]
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "FACES_DIR": str(faces_dir())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "faults.json").read_text())
    assert [phase["phase"] for phase in report["phases"]] == ["pool_kill", "connections_kill"]
    for phase in report["phases"]:
        assert phase["sent"] >= 10 and phase["accepted"] == phase["sent"], phase
        assert phase["lost"] == 0 and phase["failed"] == 0, phase
        assert phase["stored_twice"] == 0 and phase["sightings_stored_twice"] == 0, phase
        assert phase["server_errors"] == 0 and phase["without_retry_after"] == 0 and phase["hung"] == 0, phase
        assert phase["recovery_s"] is not None and phase["recovery_s"] < 10, phase
    assert report["unsent_at_end"] == 0
