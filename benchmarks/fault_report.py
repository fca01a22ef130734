"""The fault benchmark's figures, per phase, from the answers the senders kept and the
rows the service stored; and the report as Markdown. Imported after django.setup()."""

import collections

from django.db import connection

from apps.recognition.models import Frame
from benchmarks.common import percentile

FINISHED = ("done", "failed")


def figures(windows: list[dict], attempts: list, samples: list[dict], organization) -> dict:
    frames = {
        row["id"]: row
        for row in Frame.objects.filter(organization=organization).values("id", "status", "received_at", "finished_at")
    }
    first_sent = {}
    for attempt in sorted(attempts, key=lambda a: a.at):
        if attempt.key:
            first_sent.setdefault(attempt.key, attempt.at)
    answered_ids = {a.frame_id for a in attempts if a.frame_id is not None}
    twice_stored_sightings = _sightings_stored_twice(organization)
    phases = [_phase(window, attempts, first_sent, frames, answered_ids, twice_stored_sightings) for window in windows]
    return {"phases": phases, "memory": _memory(samples)}


def _sightings_stored_twice(organization) -> dict[int, int]:
    """Per frame, the sightings that repeat another of the same frame (same face box)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT frame_id, sum(n - 1) FROM (SELECT frame_id, count(*) AS n FROM sightings_sighting "
            "WHERE organization_id = %s GROUP BY frame_id, box_x, box_y, box_w, box_h HAVING count(*) > 1) AS r "
            "GROUP BY frame_id",
            [organization.pk],
        )
        return dict(cursor.fetchall())


def _phase(window, attempts, first_sent, frames, answered_ids, twice_stored_sightings) -> dict:
    start, end, fault_end = window["start"], window["end"], window["fault_end"]
    mine = [a for a in attempts if start <= a.at < end]
    keys = {a.key for a in mine if a.key and start <= first_sent[a.key] < end}
    ids_by_key = collections.defaultdict(set)
    for attempt in attempts:
        if attempt.key in keys and attempt.frame_id is not None:
            ids_by_key[attempt.key].add(attempt.frame_id)
    accepted = {frame_id for ids in ids_by_key.values() for frame_id in ids}
    # Rows no answer named: a frame stored for a request whose answer was lost, and
    # stored again for its retry.
    unanswered = [
        frame_id
        for frame_id, row in frames.items()
        if frame_id not in answered_ids and start <= row["received_at"].timestamp() < end
    ]
    answers = collections.Counter(f"{a.endpoint} {a.status or 'no answer'}" for a in mine)
    posts = [a for a in mine if a.endpoint.startswith("POST") and a.status is not None]
    processing = [
        (frames[i]["finished_at"] - frames[i]["received_at"]).total_seconds()
        for i in accepted
        if i in frames and frames[i]["finished_at"]
    ]
    return {
        "phase": window["phase"],
        "seconds": end - start,
        "fault_seconds": fault_end - window["fault_start"],
        "sent": len(keys),
        "accepted": len(ids_by_key),
        "lost": sum(1 for i in accepted if i not in frames or frames[i]["status"] not in FINISHED),
        "failed": sum(1 for i in accepted if i in frames and frames[i]["status"] == "failed"),
        "stored_twice": sum(len(ids) - 1 for ids in ids_by_key.values()) + len(unanswered),
        "sightings_stored_twice": sum(twice_stored_sightings.get(i, 0) for i in accepted),
        "answers": dict(sorted(answers.items())),
        "server_errors": sum(1 for a in mine if a.status is not None and a.status >= 500 and a.status != 503),
        "without_retry_after": sum(1 for a in mine if a.status in (429, 503) and not a.retry_after),
        "hung": sum(1 for a in mine if a.timed_out),
        "post_p50_ms": percentile([a.seconds for a in posts], 50) * 1000 if posts else None,
        "post_p95_ms": percentile([a.seconds for a in posts], 95) * 1000 if posts else None,
        "processing_p50_s": percentile(processing, 50) if processing else None,
        "processing_p95_s": percentile(processing, 95) if processing else None,
        "recovery_s": None if window["phase"] == "baseline" else _recovery(fault_end, attempts, frames),
    }


def _recovery(fault_end: float, attempts: list, frames: dict) -> float | None:
    """From the end of the fault until a frame sent after it is accepted and a frame
    finishes: frames flow again."""
    accepted = [a.at + a.seconds for a in attempts if a.frame_id is not None and a.at >= fault_end]
    finished = [
        row["finished_at"].timestamp()
        for row in frames.values()
        if row["finished_at"] and row["finished_at"].timestamp() >= fault_end
    ]
    if not accepted or not finished:
        return None
    return max(min(accepted), min(finished)) - fault_end


def _memory(samples: list[dict]) -> dict:
    # The first samples are the warm-up (models loading, caches filling).
    settled = samples[len(samples) // 10 :] or samples
    if not settled:
        return {}
    result = {
        "samples": [{"at": s["at"], "web_mb": s["web"] / 2**20, "worker_mb": s["worker"] / 2**20} for s in samples]
    }
    for name in ("web", "worker"):
        first, last = settled[0][name], settled[-1][name]
        result[name] = {
            "first_mb": first / 2**20,
            "last_mb": last / 2**20,
            "peak_mb": max(s[name] for s in settled) / 2**20,
            "growth_percent": 100 * (last - first) / first if first else None,
        }
    return result


def _number(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    settings = report["settings"]
    lines = [
        f"# Fault benchmark ({report['date']})",
        "",
        f"Machine: {report['machine']['cores']} cores, {report['machine']['memory_gb']} GB; "
        f"{report['model']} model, {report['detector']} detector. {settings['cameras']} cameras at "
        f"{settings['rate']:g} frames/s each, {settings['quiet']:g} s of traffic after each fault, "
        f"queue limit {settings['queue_limit']}. At the end {report['unsent_at_end']} frames were left unsent "
        f"and the service took {report['drain_s']:.0f} s to finish the accepted ones.",
        "",
        "| phase | sent | accepted | lost | stored twice | 5xx (not 503) | 503/429 without Retry-After | "
        "hung | POST p50 / p95 ms | processing p50 / p95 s | flowing again after s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["phases"]:
        twice = p["stored_twice"] + p["sightings_stored_twice"]
        lines.append(
            f"| {p['phase']} | {p['sent']} | {p['accepted']} | {p['lost']} | {twice} | {p['server_errors']} | "
            f"{p['without_retry_after']} | {p['hung']} | {_number(p['post_p50_ms'])} / {_number(p['post_p95_ms'])} | "
            f"{_number(p['processing_p50_s'], 1)} / {_number(p['processing_p95_s'], 1)} | "
            f"{_number(p['recovery_s'], 1)} |"
        )
    lines += ["", "Answers by endpoint and status:", ""]
    for p in report["phases"]:
        answers = ", ".join(f"{name} × {count}" for name, count in p["answers"].items())
        lines.append(f"- {p['phase']}: {answers}")
    memory = report["memory"]
    if memory:
        lines += ["", "Memory (after the first tenth of the run, to the end):", ""]
        for name in ("web", "worker"):
            m = memory[name]
            lines.append(
                f"- {name}: {m['first_mb']:.0f} MB → {m['last_mb']:.0f} MB "
                f"(**{_number(m['growth_percent'], 1)} %**, peak {m['peak_mb']:.0f} MB)"
            )
    lines.append("")
    return "\n".join(lines)
