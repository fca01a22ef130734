"""Attendance: who was in, per person and day of the organization's time zone. From
the visits, in one bounded query: first seen, last seen, time present, where, and when they checked in at a kiosk. Time
present is the union of the day's visits (two cameras at once count once); a visit
across midnight counts in both days, each its own part."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection

PERIODS = ("day", "week", "month")
# A year of days at a time: the query stays bounded by the visits in the range.
MAX_DAYS = 366

# The visits overlapping [since, until), cut at the organization's midnights; the
# pieces of a person's day merged where they overlap (a gaps-and-islands pass); then
# one row per person and day, and per period.
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
days AS (
    SELECT person_id, day, min(s) AS first_seen, max(e) AS last_seen, sum(e - s) AS present
    FROM merged GROUP BY person_id, day
),
totals AS (
    SELECT person_id, date_trunc(%(period)s, day::timestamp)::date AS period, count(*) AS days,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(present) AS present
    FROM days GROUP BY 1, 2
),
check_ins AS (
    SELECT person_id, date_trunc(%(period)s, started_at AT TIME ZONE %(tz)s)::date AS period,
           min(started_at) AS checked_in
    FROM sightings_checkin
    WHERE organization_id = %(organization)s AND outcome = 'passed' AND person_id IS NOT NULL
      AND started_at >= %(since)s AND started_at < %(until)s
      AND (%(person)s::bigint IS NULL OR person_id = %(person)s::bigint)
    GROUP BY 1, 2
),
places AS (
    SELECT r.person_id, date_trunc(%(period)s, r.day::timestamp)::date AS period,
           array_agg(DISTINCT c.name ORDER BY c.name) FILTER (WHERE c.name IS NOT NULL) AS cameras
    FROM in_range r LEFT JOIN organizations_camera c ON c.id = r.camera_id
    GROUP BY 1, 2
)
SELECT t.person_id, p.name, t.period, t.days, t.first_seen, t.last_seen, t.present,
       coalesce(places.cameras, '{}'), check_ins.checked_in
FROM totals t
JOIN gallery_person p ON p.id = t.person_id
JOIN places ON places.person_id = t.person_id AND places.period = t.period
LEFT JOIN check_ins ON check_ins.person_id = t.person_id AND check_ins.period = t.period
ORDER BY t.period, p.name, t.person_id
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
        "period": period,
    }
    with connection.cursor() as cursor:
        cursor.execute(ATTENDANCE_SQL, params)
        return [
            Attendance(
                person_id=person_id,
                person=name,
                period=start,
                days=days,
                first_seen=first_seen.astimezone(zone),
                last_seen=last_seen.astimezone(zone),
                present=present,
                cameras=tuple(cameras),
                checked_in=checked_in.astimezone(zone) if checked_in else None,
            )
            for person_id, name, start, days, first_seen, last_seen, present, cameras, checked_in in cursor.fetchall()
        ]


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
