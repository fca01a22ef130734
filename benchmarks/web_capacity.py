"""The web tier's capacity: `python -m benchmarks.web_capacity [--processes 2,4] [--out DIR]`.

`POST /api/v1/frames/` (a 640-px photo, multipart, an API key) as fast as `--clients`
keep-alive connections can send them, against gunicorn with project/gunicorn.conf.py
and each number of processes in turn, on the embedded PostgreSQL (database
`faces_capacity`) and Redis. No worker runs: what is measured is accepting and storing
frames (decode check, backpressure count, file, row, queueing), not recognizing them.
The load comes from `--client-processes` processes of threads on the same machine, so
on a small machine they take cores the server would otherwise have: compare the
configurations with each other, in one run. Writes DIR/web_capacity.md and .json.
"""

import argparse
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import requests

from benchmarks.environment import REPO, setup_django

DATABASE = "faces_capacity"


def _load(url: str, key: str, frames: list[bytes], threads: int, seconds: float) -> list[tuple[int, float]]:
    """(status, seconds) of every request `threads` keep-alive connections sent."""
    results, stop = [], time.monotonic() + seconds

    def send(offset: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {key}"
        sent = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status = session.post(
                    f"{url}/api/v1/frames/",
                    files={"image": ("frame.jpg", frames[sent % len(frames)], "image/jpeg")},
                    timeout=30,
                ).status_code
            except requests.RequestException:
                status = 0
            results.append((status, time.perf_counter() - started))
            sent += 1

    workers = [threading.Thread(target=send, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def measure(processes: int, args, environment: dict, frames: list[bytes]) -> dict:
    from apps.organizations.services import api_key_create, organization_create
    from benchmarks.common import percentile
    from project import workers

    organization = organization_create(slug=f"capacity-{processes}-{uuid.uuid4().hex[:6]}")
    _, key = api_key_create(organization=organization)
    port = workers.free_port()
    url = f"http://127.0.0.1:{port}"
    with open(args.out / f"gunicorn-{processes}.log", "w") as log:
        server = subprocess.Popen(
            workers.web_command(bind=f"127.0.0.1:{port}", processes=processes),
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        workers.wait_for_web(url, server, args.out / f"gunicorn-{processes}.log")
        threads = max(1, args.clients // args.client_processes)
        # Warm up: every server process has its connections and imports ready.
        _load(url, key, frames, threads, 3.0)
        with ProcessPoolExecutor(args.client_processes) as pool:
            started = time.monotonic()
            loads = [pool.submit(_load, url, key, frames, threads, args.seconds) for _ in range(args.client_processes)]
            parts = [load.result() for load in loads]
            elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = [result for part in parts for result in part]
    accepted = [seconds for status, seconds in results if status == 202]
    statuses = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "processes": processes,
        "threads_per_process": int(environment.get("WEB_THREADS", 4)),
        "clients": threads * args.client_processes,
        "seconds": round(elapsed, 1),
        "requests": len(results),
        "statuses": statuses,
        "accepted_per_second": round(len(accepted) / elapsed, 1),
        "p50_ms": round(percentile(accepted, 50) * 1000, 1) if accepted else None,
        "p95_ms": round(percentile(accepted, 95) * 1000, 1) if accepted else None,
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Web tier capacity ({report['date']})",
        "",
        f"Machine: {report['machine']['cores']} cores; `POST /api/v1/frames/` of 640-px photos, "
        f"{report['rows'][0]['clients']} keep-alive clients for {report['settings']['seconds']:g} s per row, "
        "no worker running.",
        "",
        "| gunicorn processes × threads | clients | requests | accepted/s | p50 ms | p95 ms | answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        answers = ", ".join(f"{status} × {count}" for status, count in sorted(row["statuses"].items()))
        lines.append(
            f"| {row['processes']} × {row['threads_per_process']} | {row['clients']} | {row['requests']} | "
            f"{row['accepted_per_second']} | {row['p50_ms']} | {row['p95_ms']} | {answers} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="2,4", help="gunicorn processes, one configuration each")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="of load per configuration")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "web-capacity")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # No backpressure or throttling in the way: the server's own limit is measured.
    environment = setup_django(args.out, DATABASE, {"API_MAX_QUEUED_FRAMES": "100000000"})
    environment = {**os.environ, **environment}
    from benchmarks.common import camera_frames, machine, write_report

    frames = camera_frames(25)
    rows = []
    for processes in [int(p) for p in args.processes.split(",")]:
        print(f"{processes} processes ...", flush=True)
        rows.append(measure(processes, args, environment, frames))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out)},
        "rows": rows,
    }
    write_report(args.out, "web_capacity", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
