"""The report as Markdown, one part per measured section."""

from benchmarks.throughput import BETWEEN, CRITICAL


def markdown(report: dict) -> str:
    lines = [
        f"# Benchmark ({report['size']}, {report['date']})",
        "",
        f"Machine: {report['machine']['cores']} cores, {report['machine']['memory_gb']} GB, "
        f"{report['machine']['os']}, Python {report['machine']['python']}; "
        f"{report.get('model', 'Dlib')} model, {report.get('detector', 'dlib')} detector, "
        "640-px JPEG frames from ../shared/datasets/faces.",
        "",
    ]
    # A report made by --sections alone may lack some sections: each is written if measured.
    if "pipeline" in report:
        lines += _throughput_markdown(report)
    if "search" in report:
        lines += _search_markdown(report)
    if "find" in report:
        lines += _find_markdown(report)
    if "memory" in report:
        lines += _worker_markdown(report)
    return "\n".join(lines)


def _throughput_markdown(report: dict) -> list[str]:
    pipeline, service = report["pipeline"], report["service"]
    lines = [
        "## Service vs its own pipeline (1 worker process)",
        "",
        f"{pipeline['rounds']} alternating rounds of {pipeline['frames'] // pipeline['rounds']} frames each.",
        "",
        "| | frames | seconds | frames/s | per round |",
        "|---|---|---|---|---|",
    ]
    for label, side in (("bare pipeline, one process", pipeline), ("HTTP → Celery → database", service)):
        rounds = ", ".join(f"{fps:.2f}" for fps in side["round_fps"])
        lines.append(f"| {label} | {side['frames']} | {side['seconds']:.1f} | {side['fps']:.2f} | {rounds} |")
    lines += [
        "",
        f"The service delivers **{100 * service['fps'] / pipeline['fps']:.1f} %** of the bare pipeline's rate.",
        "",
    ]
    latency = report["latency"]
    lines += [
        "## Latency, POST to result",
        "",
        f"At {latency['rate_fps']:.2f} frames/s ({latency['frames']} frames): "
        f"p50 **{latency['p50_ms']:.0f} ms**, p95 **{latency['p95_ms']:.0f} ms**.",
        "",
    ]
    columns = list(service["cost_ms"])
    lines += [
        "## Cost per frame (mean, ms)",
        "",
        "Stages as each side timed them. The service's worker runs decode, detect and embed on its "
        "model thread, and match and write on its recorder thread beside the next frame's models; "
        f"*{BETWEEN}* is the model thread's time outside its stages (handing the result to the recorder, "
        "Celery's hand-over to the next task, loading that frame). *critical path*: the stages a frame "
        "waits for on each side.",
        "",
        "| | " + " | ".join(columns) + " | critical path |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for side, label in (("pipeline", "bare pipeline"), ("service", "service worker")):
        costs = report[side]["cost_ms"]
        cells = [f"{costs[c]:.1f}" if c in costs else "–" for c in columns]
        critical = sum(costs.get(c, 0.0) for c in CRITICAL[side])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {critical:.1f} |")
    lines.append("")
    if cpu := service.get("cpu_ms"):
        wall = 1000 * service["seconds"] / service["frames"]
        lines += [
            "## CPU per frame in the service rounds (ms)",
            "",
            f"Each process's CPU time over the service rounds, per frame ({wall:.1f} ms of wall time a frame): "
            "on a machine of few cores, whatever runs beside the models takes from them.",
            "",
            "| process | CPU ms a frame |",
            "|---|---|",
            *(f"| {role} | {used:.1f} |" for role, used in cpu.items()),
            f"| all, in cores busy | {sum(cpu.values()):.1f} ({sum(cpu.values()) / wall:.2f} cores) |",
            "",
        ]
    return lines


def _search_markdown(report: dict) -> list[str]:
    lines = [
        "## 1:K search (one organization among others' rows)",
        "",
        "The service's own path (exact, or the IVFFlat search index); **bold**: its default setting. "
        f"HNSW rows are the comparison that made the choice. Embeddings shaped like {report['model']}'s "
        f"({report['search'][0].get('dimensions', 128)}-d; benchmarks/gallery_search.py, SHAPES).",
        "",
        "| embeddings | other orgs' rows | search | setting | p50 ms | p95 ms | recall@1 | index build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["search"]:
        setting = f"**{row['setting']}**" if row.get("default") else row.get("setting", "")
        lines.append(
            f"| {row['size']:,} | {row['other_rows']:,} | {row['plan']} | {setting} | {row['p50_ms']:.2f} | "
            f"{row['p95_ms']:.2f} | {row['recall_at_1']:.3f} | {row['index_build_s']:.0f} |"
        )
    lines.append("")
    return lines


def _find_markdown(report: dict) -> list[str]:
    lines = [
        "## Against DeepFace's find (time per probe, detection and embedding included)",
        "",
        "| gallery photos | probes | DeepFace find s | this service s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for row in report["find"]:
        lines.append(
            f"| {row['gallery']:,} | {row['probes']} | {row['deepface_find_s']:.3f} | {row['service_s']:.3f} | "
            f"{row['speedup']:.1f}× |"
        )
    lines.append("")
    return lines


def _worker_markdown(report: dict) -> list[str]:
    memory, cold = report["memory"], report["cold_start"]
    return [
        "## Worker",
        "",
        f"Memory over {memory['frames']} frames after warm-up: {memory['rss_before_mb']:.0f} MB → "
        f"{memory['rss_after_mb']:.0f} MB (**{memory['growth_percent']:+.1f} %**).",
        "",
        f"Cold start: the worker answers after {cold['ping_s']:.1f} s; first result after "
        f"**{cold['first_result_s']:.1f} s**.",
        "",
    ]
