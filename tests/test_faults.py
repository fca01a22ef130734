"""The fault benchmark's short version: two cameras for under a minute against a web
server, a worker and beat of their own, one pool process killed with SIGKILL mid-frame
and every database connection terminated. Real processes, real faults: nothing
accepted may be lost or stored twice, and no answer may be a 5xx other than a 503
with Retry-After. (The whole run: `python -m benchmarks.faults`, README "Faults".)"""

import json

from tests.support.benchmarks import run_benchmark_command


def test_frames_survive_a_killed_pool_process_and_terminated_connections(tmp_path):
    options = ["--cameras", "2", "--rate", "1", "--lead", "2", "--quiet", "8", "--drain", "120"]
    run_benchmark_command(
        "benchmarks.faults", *options, "--phases", "pool_kill,connections_kill", "--out", str(tmp_path)
    )
    report = json.loads((tmp_path / "faults.json").read_text())
    assert [phase["phase"] for phase in report["phases"]] == ["pool_kill", "connections_kill"]
    for phase in report["phases"]:
        assert phase["sent"] >= 10 and phase["accepted"] == phase["sent"], phase
        assert phase["lost"] == 0 and phase["failed"] == 0, phase
        assert phase["stored_twice"] == 0 and phase["sightings_stored_twice"] == 0, phase
        assert phase["server_errors"] == 0 and phase["without_retry_after"] == 0 and phase["hung"] == 0, phase
        assert phase["recovery_s"] is not None and phase["recovery_s"] < 10, phase
    assert report["unsent_at_end"] == 0
