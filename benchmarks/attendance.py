"""Attendance at size: `python -m benchmarks.attendance [--people 1000] [--visits 100000]`.

An organization of `--people` people with `--visits` visits over one month at 5 cameras
(workdays' arrivals and departures, a few of them across midnight), a kiosk check-in
for a fifth of the visits (passed or refused, as a door's kiosk records them), among another
organization's rows of the same size, on the embedded PostgreSQL (database
`faces_attendance`). Times the month's attendance per day for all (the whole of it as
one list, the whole streamed as the CSV export reads it, and one page as the report
page and the API read it), per month for all, and per day for one person (median of
`--repeats`), with the most memory Python held while reading each (one more run,
traced). Writes DIR/attendance.md and DIR/attendance.json.
"""

import argparse
import random
import statistics
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks.environment import REPO, setup_django

DATABASE = "faces_attendance"
MONTH = (date(2026, 11, 1), date(2026, 12, 1))


def populate(organization, people: int, visits: int, rng: random.Random) -> None:
    from apps.gallery.models import Person
    from apps.organizations.models import Camera
    from apps.sightings.models import CheckIn, Visit

    cameras = Camera.objects.bulk_create(Camera(organization=organization, name=f"camera {i}") for i in range(5))
    persons = Person.objects.bulk_create(
        Person(organization=organization, name=f"person {i:04d}") for i in range(people)
    )
    zone, days = organization.zone, (MONTH[1] - MONTH[0]).days
    rows = []
    for _ in range(visits):
        day = MONTH[0] + timedelta(days=rng.randrange(days))
        start = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
            seconds=rng.randrange(6 * 3600, 24 * 3600)
        )
        rows.append(
            Visit(
                organization=organization,
                person=rng.choice(persons),
                camera=rng.choice(cameras),
                started_at=start,
                ended_at=start + timedelta(seconds=rng.randrange(0, 4 * 3600)),
                frames=1,
                closed=True,
            )
        )
    Visit.objects.bulk_create(rows, batch_size=5000)
    check_ins = [
        CheckIn(
            organization=organization,
            camera=visit.camera,
            person=visit.person,
            direction="left",
            outcome=CheckIn.Outcome.PASSED if rng.random() < 0.9 else CheckIn.Outcome.REFUSED,
            started_at=visit.started_at,
        )
        for visit in rng.sample(rows, len(rows) // 5)
    ]
    CheckIn.objects.bulk_create(check_ins, batch_size=5000)


def timed(function, repeats: int) -> tuple[float, int]:
    """The median seconds to read every row `function` gives, and how many."""
    seconds, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = sum(1 for _ in function())
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), rows


def peak_megabytes(function) -> float:
    """The most memory Python held at once while every row was read (one more run,
    apart from the timed ones: tracing slows allocation)."""
    tracemalloc.start()
    try:
        for _ in function():
            pass
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "attendance")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    setup_django(args.out, DATABASE, {})
    from django.db import connection

    from apps.organizations.services import organization_create
    from apps.sightings.attendance import attendance, attendance_stream
    from apps.sightings.models import Visit
    from benchmarks.common import machine, write_report

    rng = random.Random(7)
    organization = organization_create(slug="attendance")
    organization.time_zone = "Europe/Paris"
    organization.save(update_fields=["time_zone"])
    populate(organization, args.people, args.visits, rng)
    populate(organization_create(slug="attendance-other"), args.people, args.visits, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    one = Visit.objects.filter(organization=organization).values_list("person_id", flat=True).first()
    month = {"organization": organization, "since": MONTH[0], "until": MONTH[1]}
    cases = {
        "all people, per day, as one list": lambda: attendance(**month).rows,
        "all people, per day, streamed (the export)": lambda: attendance_stream(**month),
        "all people, per day, a page of 50 (the page, the API)": lambda: (
            attendance(**month, offset=1000, limit=50).rows
        ),
        "all people, per month": lambda: attendance(**month, period="month").rows,
        "one person, per day": lambda: attendance(**month, person=one).rows,
    }
    results = []
    for name, case in cases.items():
        seconds, rows = timed(case, args.repeats)
        peak = peak_megabytes(case)
        results.append({"case": name, "seconds": round(seconds, 3), "rows": rows, "peak_mb": round(peak, 3)})
        print(f"{name}: {seconds:.3f} s, {rows} rows, {peak:.1f} MB at most", flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out)},
        "time_zone": str(ZoneInfo(organization.time_zone)),
        "results": results,
    }
    lines = [
        f"# Attendance at size ({report['date']})",
        "",
        f"{args.people} people, {args.visits} visits in November 2026 (and another organization's as many), "
        f"{machine()['cores']} cores; median of {args.repeats}.",
        "",
        "| query | seconds | rows | Python's memory at most, MB |",
        "|---|---|---|---|",
        *[f"| {r['case']} | {r['seconds']} | {r['rows']} | {r['peak_mb']:.1f} |" for r in results],
    ]
    write_report(args.out, "attendance", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
