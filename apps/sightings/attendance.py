"""Attendance: who was in, per person and day of the organization's time zone. From
the visits, in one bounded query: first seen, last seen, time present, where, and when they checked in at a kiosk. Time
present is the union of the day's visits (two cameras at once count once); a visit
across midnight counts in both days, each its own part."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection

PERIODS = ("day", "week", "month")
# A year of days at a time: the query stays bounded by the visits in the range.
MAX_DAYS = 366

# The visits overlapping [since, until), cut at the organization's midnights; the
# pieces of a person's day merged where they overlap (a gaps-and-islands pass); then
# one row per person and day.
ATTENDANCE_SQL = """
WITH pieces AS (
    SELECT v.person_id, v.camera_id, day::date AS day,
           greatest(v.started_at, day::date::timestamp AT TIME ZONE %(tz)s) AS s,
           least(v.ended_at, (day::date + 1)::timestamp AT TIME ZONE %(tz)s) AS e
    FROM sightings_visit v
    CROSS JOIN LATERAL generate_series(
        (v.started_at AT TIME ZONE %(tz)s)::date, (v.ended_at AT TIME ZONE %(tz)s)::date, interval '1 day'
    ) AS day
    WHERE v.organization_id = %(organization)s
      AND v.started_at < %(until)s AND v.ended_at >= %(since)s
      AND (%(person)s::bigint IS NULL OR v.person_id = %(person)s::bigint)
      AND (%(camera)s::bigint IS NULL OR v.camera_id = %(camera)s::bigint)
      AND (%(group)s::bigint IS NULL OR v.person_id IN (
          SELECT person_id FROM gallery_groupmember WHERE group_id = %(group)s::bigint
      ))
),
in_range AS (
    SELECT * FROM pieces WHERE day >= %(since_day)s AND day < %(until_day)s
),
marked AS (
    SELECT *, CASE WHEN s <= max(e) OVER (
                   PARTITION BY person_id, day ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
               ) THEN 0 ELSE 1 END AS new_island
    FROM in_range
),
islands AS (
    SELECT person_id, day, s, e,
           sum(new_island) OVER (PARTITION BY person_id, day ORDER BY s, e) AS island
    FROM marked
),
merged AS (
    SELECT person_id, day, min(s) AS s, max(e) AS e FROM islands GROUP BY person_id, day, island
),
totals AS (
    SELECT person_id, day, min(s) AS first_seen, max(e) AS last_seen, sum(e - s) AS present
    FROM merged GROUP BY person_id, day
),
check_ins AS (
    SELECT person_id, (started_at AT TIME ZONE %(tz)s)::date AS day, min(started_at) AS checked_in
    FROM sightings_checkin
    WHERE organization_id = %(organization)s AND outcome = 'passed' AND person_id IS NOT NULL
      AND started_at >= %(since)s AND started_at < %(until)s
    GROUP BY 1, 2
),
places AS (
    SELECT r.person_id, r.day, array_agg(DISTINCT c.name ORDER BY c.name) FILTER (WHERE c.name IS NOT NULL) AS cameras
    FROM in_range r LEFT JOIN organizations_camera c ON c.id = r.camera_id
    GROUP BY r.person_id, r.day
)
SELECT t.person_id, p.name, t.day, t.first_seen, t.last_seen, t.present, coalesce(places.cameras, '{}'),
       check_ins.checked_in
FROM totals t
JOIN gallery_person p ON p.id = t.person_id
JOIN places ON places.person_id = t.person_id AND places.day = t.day
LEFT JOIN check_ins ON check_ins.person_id = t.person_id AND check_ins.day = t.day
ORDER BY t.day, p.name, t.person_id
"""


@dataclass(frozen=True)
class Attendance:
    """One person over one period (a day, a week from Monday, a month)."""

    person_id: int
    person: str
    period: date  # its first day
    days: int  # days present
    first_seen: datetime
    last_seen: datetime
    present: timedelta
    cameras: tuple[str, ...]
    checked_in: datetime | None  # the first check-in at a kiosk that passed its challenge


def attendance(
    *, organization, since: date, until: date, period: str = "day", person=None, group=None, camera=None
) -> list[Attendance]:
    """Days `since` to `until` (excluded), of the organization's time zone, ordered by
    period, then name."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    zone = organization.zone
    params = {
        "organization": organization.pk,
        "tz": organization.time_zone,
        "since": datetime.combine(since, time.min, tzinfo=zone),
        "until": datetime.combine(until, time.min, tzinfo=zone),
        "since_day": since,
        "until_day": until,
        "person": person,
        "group": group,
        "camera": camera,
    }
    with connection.cursor() as cursor:
        cursor.execute(ATTENDANCE_SQL, params)
        days = [
            Attendance(
                person_id=person_id,
                person=name,
                period=day,
                days=1,
                first_seen=first_seen.astimezone(zone),
                last_seen=last_seen.astimezone(zone),
                present=present,
                cameras=tuple(cameras),
                checked_in=checked_in.astimezone(zone) if checked_in else None,
            )
            for person_id, name, day, first_seen, last_seen, present, cameras, checked_in in cursor.fetchall()
        ]
    return days if period == "day" else _by_period(days, period)


def attendance_range(*, organization, since: date | None = None, until: date | None = None) -> tuple[date, date]:
    """The days asked for, `until` included, as attendance() takes them (`until`
    excluded). Without dates: this week, Monday to today, in the organization's time
    zone. Raises ValueError for a range backwards or over MAX_DAYS."""
    today = datetime.now(organization.zone).date()
    since = since or today - timedelta(days=today.weekday())
    until = until or today
    if until < since:
        raise ValueError("'until' is before 'since'.")
    if (until - since).days >= MAX_DAYS:
        raise ValueError(f"At most {MAX_DAYS} days at a time.")
    return since, until + timedelta(days=1)


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _by_period(days: Iterable[Attendance], period: str) -> list[Attendance]:
    grouped: dict[tuple[date, int], Attendance] = {}
    for row in days:
        key = (period_start(row.period, period), row.person_id)
        seen = grouped.get(key)
        grouped[key] = (
            Attendance(**{**vars(row), "period": key[0]})
            if seen is None
            else Attendance(
                person_id=row.person_id,
                person=row.person,
                period=key[0],
                days=seen.days + 1,
                first_seen=min(seen.first_seen, row.first_seen),
                last_seen=max(seen.last_seen, row.last_seen),
                present=seen.present + row.present,
                cameras=tuple(sorted(set(seen.cameras) | set(row.cameras))),
                checked_in=min((t for t in (seen.checked_in, row.checked_in) if t), default=None),
            )
        )
    return sorted(grouped.values(), key=lambda row: (row.period, row.person, row.person_id))
