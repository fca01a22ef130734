"""The benchmark keeps working: run at a tiny size (the full run is `python -m benchmarks.run`)."""

import json

from tests.support.benchmarks import run_benchmark_command


def run_benchmark(out, *options: str) -> None:
    run_benchmark_command("benchmarks.run", "--size", "tiny", *options, "--out", str(out))


def test_benchmark_runs_at_a_tiny_size(tmp_path):
    run_benchmark(tmp_path)
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["pipeline"]["fps"] > 0 and report["service"]["fps"] > 0 and report["service"]["failed"] == 0
    assert set(report["pipeline"]["cost_ms"]) == {"decode", "detect", "embed", "match"}
    assert set(report["service"]["cost_ms"]) == {
        "decode",
        "detect",
        "embed",
        "match",
        "write",
        "between models",
    }
    assert report["pipeline"]["rounds"] == report["service"]["rounds"] == 2
    # Each process a frame goes through, the worker's (its models) the busiest; the
    # operating system counts CPU time in 10-ms ticks, which a few frames may not fill.
    cpu = report["service"]["cpu_ms"]
    assert set(cpu) == {
        "worker process (models, recorder)",
        "web server (gunicorn)",
        "this process (the client)",
        "PostgreSQL",
        "Redis",
        "Celery's parent",
    }
    assert all(used >= 0 for used in cpu.values()) and max(cpu, key=cpu.get) == "worker process (models, recorder)"
    assert report["latency"]["p95_ms"] >= report["latency"]["p50_ms"] > 0
    plans = {row["plan"] for row in report["search"]}
    assert plans == {"exact", "ivfflat", "hnsw (comparison)"}
    assert all(row["recall_at_1"] > 0.9 for row in report["search"])
    assert report["find"][0]["deepface_find_s"] > 0 and report["find"][0]["service_s"] > 0
    assert report["memory"]["rss_after_mb"] > 0 and report["cold_start"]["first_result_s"] > 0
    markdown = (tmp_path / "benchmark.md").read_text()
    for heading in ("Service vs its own pipeline", "CPU per frame", "1:K search", "DeepFace's find", "Worker"):
        assert heading in markdown


def test_benchmark_sections_alone_make_a_report_of_their_own(tmp_path):
    """`--sections` into a folder with no report yet writes one with just those sections."""
    run_benchmark(tmp_path, "--sections", "worker")
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["cold_start"]["first_result_s"] > 0 and "pipeline" not in report
    markdown = (tmp_path / "benchmark.md").read_text()
    assert "## Worker" in markdown and "Service vs its own pipeline" not in markdown
    assert f"{report['model']} model, {report['detector']} detector" in markdown


def test_the_web_capacity_benchmark_measures_each_configuration(tmp_path):
    run_benchmark_command(
        "benchmarks.web_capacity",
        *("--processes", "1,2", "--clients", "2", "--client-processes", "1", "--seconds", "2", "--out", str(tmp_path)),
    )
    report = json.loads((tmp_path / "web_capacity.json").read_text())
    assert [row["processes"] for row in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert row["accepted_per_second"] > 0 and set(row["statuses"]) == {"202"}, row
        assert 0 < row["p50_ms"] <= row["p95_ms"]
    assert "| 2 × 4 |" in (tmp_path / "web_capacity.md").read_text()


def test_the_attendance_benchmark_times_each_query(tmp_path):
    run_benchmark_command(
        "benchmarks.attendance", "--people", "5", "--visits", "60", "--repeats", "1", "--out", str(tmp_path)
    )
    report = json.loads((tmp_path / "attendance.json").read_text())
    by_case = {result["case"]: result for result in report["results"]}
    assert by_case["all people, per month"]["rows"] == 5
    whole = by_case["all people, per day, as one list"]["rows"]
    assert by_case["all people, per day, streamed (the export)"]["rows"] == whole
    assert 0 < by_case["one person, per day"]["rows"] <= whole
    assert all(result["seconds"] > 0 and result["peak_mb"] > 0 for result in report["results"])


def test_the_kiosk_benchmark_times_a_passed_and_a_refused_check_in(tmp_path):
    run_benchmark_command("benchmarks.kiosk", "--runs", "1", "--out", str(tmp_path))
    report = json.loads((tmp_path / "kiosk.json").read_text())
    [run] = report["runs"]
    assert run["identified"] == ["Lin-Manuel Miranda"]
    assert (run["passed"]["outcome"], run["still"]["outcome"]) == ("passed", "refused"), run
    assert run["still"]["reason"] == "no_turn"
    summary = report["summary"]
    assert 0 < summary["identify_seconds"] < summary["passed_seconds"]
    assert "added by the challenge" in (tmp_path / "kiosk.md").read_text()
