"""The speed benchmark: `python -m benchmarks.run [--size full|tiny] [--out DIR]`.

It runs in a database of its own (`faces_bench` on the embedded server, or
BENCH_DATABASE_URL), so that its million rows and index rebuilds never touch real data,
and writes DIR/benchmark.md and DIR/benchmark.json. Sections:

- pipeline vs service: frames per second of the bare pipeline in this process, against
  HTTP -> Celery -> database with one worker process; latency at a steady rate below
  saturation; the cost per frame by stage;
- 1:K search for one organization among other organizations' rows (synthetic
  face-like embeddings): the service's path (exact, or its IVFFlat search index) and
  HNSW for comparison, p50 / p95 and recall@1 against exact search;
- against DeepFace's `find` on the same gallery size, probes, model and detector;
- worker memory over many frames after warm-up, and cold start.
"""

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from benchmarks.environment import REPO, setup_django

SIZES = {
    # frames per round and alternating rounds of pipeline and service, latency frames, memory
    # frames, search sizes, other organizations' rows, HNSW comparison sizes, find sizes, probes
    "tiny": {
        "frames": 4,
        "rounds": 2,
        "latency": 3,
        "memory": 6,
        "search": [100, 500],
        "other_rows": 500,
        "hnsw": [500],
        "find": [200],
        "probes": 20,
        # Small enough that the 500-face gallery goes through the search index.
        "exact_search_max_rows": 200,
    },
    "full": {
        "frames": 26,
        "rounds": 4,
        "latency": 30,
        "memory": 2000,
        "search": [5_000, 10_000, 100_000, 1_000_000],
        "other_rows": 200_000,
        "hnsw": [1_000_000],
        "find": [1_000, 100_000],
        "probes": 200,
    },
}


SECTIONS = ("throughput", "worker", "search", "find")


def previous_report(out: Path, report: dict) -> dict:
    """The report already in OUT, to merge sections measured again into (a new one if none)."""
    existing = out / "benchmark.json"
    previous = json.loads(existing.read_text()) if existing.exists() else dict(report)
    # One model and detector per report: merged sections of another would be mislabelled.
    measured = (previous.get("model", report["model"]), previous.get("detector", report["detector"]))
    if measured != (report["model"], report["detector"]):
        sys.exit(
            f"{existing} measured {measured[0]} + {measured[1]}; this run measures "
            f"{report['model']} + {report['detector']}: give it another --out."
        )
    return previous


def measure(section: str, args, sizes: dict, organization, key: str, previous: dict) -> dict:
    """One section's figures, as the report's keys."""
    from benchmarks.common import camera_frames
    from benchmarks.find import bench_find
    from benchmarks.gallery_search import HNSW_PLAN, bench_search
    from benchmarks.throughput import bench_cold_start, bench_latency, bench_memory, bench_throughput, running_service

    if section == "throughput":
        # Pipeline and service in alternating rounds, then latency at half the service's rate.
        with running_service(args.worker_pool, key, args.out / "gunicorn-throughput.log") as (service, session):
            pipeline, served = bench_throughput(
                organization, service, session, camera_frames(sizes["frames"]), sizes["rounds"]
            )
            latency = bench_latency(service, session, camera_frames(sizes["latency"]), 0.5 * served["fps"])
        return {"pipeline": pipeline, "service": served, "latency": latency, "worker_pool": args.worker_pool}
    if section == "worker":
        # Memory over many frames and cold start, with a fresh worker.
        with running_service(args.worker_pool, key, args.out / "gunicorn-worker.log") as (service, session):
            return {
                "memory": bench_memory(service, session, camera_frames(sizes["frames"]), sizes["memory"]),
                "cold_start": bench_cold_start(service, session, camera_frames(1)[0]),
            }
    if section == "search":
        only = [int(x) for x in args.search_sizes.split(",")] if args.search_sizes else sizes["search"]
        hnsw = sizes["hnsw"] if args.hnsw_sizes is None else [int(x) for x in args.hnsw_sizes.split(",") if x]
        fresh = bench_search(only, sizes["other_rows"], sizes["probes"], hnsw, organization.recognition_model)
        # Rows of other sizes stay, and HNSW comparison rows that were not measured again.
        kept = [
            row
            for row in previous.get("search", [])
            if row["size"] not in only or (row["plan"] == HNSW_PLAN and row["size"] not in hnsw)
        ]
        return {"search": sorted(kept + fresh, key=lambda row: (row["size"], row["plan"] == HNSW_PLAN))}
    if section == "find":
        return {"find": bench_find(sizes["find"], camera_frames(10 if args.size == "full" else 2), organization)}
    raise ValueError(section)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "benchmark")
    parser.add_argument(
        "--sections",
        default="all",
        help=f"all, or some of {','.join(SECTIONS)} (comma-separated): measure those again into OUT's report",
    )
    parser.add_argument(
        "--worker-pool", choices=["prefork", "solo"], default="prefork", help="Celery pool of the one worker process"
    )
    parser.add_argument("--model", default="", help="model of the measured organization (default: a new one's)")
    parser.add_argument("--detector", default="", help="its detector (default: a new organization's)")
    parser.add_argument(
        "--hnsw-sizes",
        help="with --sections search: sizes to build HNSW at for comparison (comma-separated; empty: none)",
    )
    parser.add_argument(
        "--search-sizes",
        help="with --sections search: only these sizes (comma-separated), replacing their rows in OUT's report",
    )
    args = parser.parse_args(argv)
    sections = SECTIONS if args.sections == "all" else tuple(args.sections.split(","))
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))} (choose from {', '.join(SECTIONS)})")
    sizes = SIZES[args.size]
    args.out.mkdir(parents=True, exist_ok=True)
    environment = {
        # The benchmark saturates the queue on purpose; backpressure would only stall it.
        "API_MAX_QUEUED_FRAMES": "100000",
        **(
            {"RECOGNITION_EXACT_SEARCH_MAX_ROWS": str(sizes["exact_search_max_rows"])}
            if "exact_search_max_rows" in sizes
            else {}
        ),
    }
    setup_django(args.out, "faces_bench", environment)
    # These import Django's models: only once Django is set up.
    from apps.organizations.services import api_key_create, organization_create
    from benchmarks.common import enroll_gallery, machine, write_report
    from benchmarks.report import markdown

    organization = organization_create(
        slug=f"bench-{uuid.uuid4().hex[:6]}", recognition_model=args.model, detector=args.detector
    )
    enroll_gallery(organization)
    _, key = api_key_create(organization=organization)
    report = {
        "size": args.size,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": organization.recognition_model,
        "detector": organization.detector,
    }
    if args.sections != "all":
        report = previous_report(args.out, report) | {field: report[field] for field in ("date", "model", "detector")}
    for section in sections:
        print(f"{section} ...", flush=True)
        measured = measure(section, args, sizes, organization, key, report)
        report.update(measured)
        print(f"  {section}: {json.dumps(measured)}", flush=True)
        (args.out / "benchmark.partial.json").write_text(json.dumps(report, indent=2))
    write_report(args.out, "benchmark", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
