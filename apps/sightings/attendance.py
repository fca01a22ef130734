"""Attendance: who was in, per person and day of the organization's time zone. From
the visits, in one bounded query: first seen, last seen, time present, where, and
when they checked in at a kiosk. Time present is the union of the day's visits (two
cameras at once count once); a visit across midnight counts in both days, each its
own part."""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from django.core.paginator import Page, Paginator
from django.db import connection

from apps.organizations.models import Camera

PERIODS = ("day", "week", "month")
# A year of days at a time: the query stays bounded by the visits in the range.
MAX_DAYS = 366

# The visits overlapping [since, until), cut at the organization's midnights, then one
# row per person and period (a day, a week, a month). Time present is the union of the
# pieces: taken in order of start, a piece adds only what reaches past the furthest end
# before it (`reach`); pieces of different days never overlap, so a period's union is
# the sum of its days'. One window pass, one aggregation.
PERIODS_SQL = """
WITH visits AS NOT MATERIALIZED (
    SELECT v.person_id, v.camera_id, v.started_at, v.ended_at,
           (v.started_at AT TIME ZONE %(tz)s)::date AS first_day, (v.ended_at AT TIME ZONE %(tz)s)::date AS last_day
    FROM sightings_visit v
    WHERE v.organization_id = %(organization)s
      AND v.started_at < %(until)s AND v.ended_at >= %(since)s
      AND (%(person)s::bigint IS NULL OR v.person_id = %(person)s::bigint)
      AND (%(camera)s::bigint IS NULL OR v.camera_id = %(camera)s::bigint)
      AND (%(group)s::bigint IS NULL OR v.person_id IN (
          SELECT person_id FROM gallery_groupmember WHERE group_id = %(group)s::bigint
      ))
),
pieces AS (
    -- Most visits end on the day they start: whole, without a series to cut them by.
    SELECT person_id, camera_id, first_day AS day, started_at AS s, ended_at AS e
    FROM visits WHERE first_day = last_day
    UNION ALL
    SELECT person_id, camera_id, day::date,
           greatest(started_at, day::date::timestamp AT TIME ZONE %(tz)s),
           least(ended_at, (day::date + 1)::timestamp AT TIME ZONE %(tz)s)
    FROM visits CROSS JOIN LATERAL generate_series(first_day, last_day, interval '1 day') AS day
    WHERE first_day < last_day
),
in_range AS (
    SELECT *, date_trunc(%(period)s, day::timestamp)::date AS period
    FROM pieces WHERE day >= %(since_day)s AND day < %(until_day)s
),
reaching AS (
    SELECT *, max(e) OVER (earlier ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach,
           lag(day) OVER earlier AS day_before
    FROM in_range
    WINDOW earlier AS (PARTITION BY person_id, period ORDER BY s, e)
),
totals AS (
    -- In the window's order: no sorting again (days are counted where they change, the
    -- cameras repeat and are told apart by the caller).
    SELECT person_id, period, count(*) FILTER (WHERE day_before IS DISTINCT FROM day) AS days,
           min(s) AS first_seen, max(e) AS last_seen,
           sum(greatest(e - greatest(s, coalesce(reach, s)), interval '0')) AS present,
           array_agg(camera_id) FILTER (WHERE camera_id IS NOT NULL) AS cameras
    FROM reaching GROUP BY person_id, period
),
check_ins AS (
    SELECT person_id, date_trunc(%(period)s, started_at AT TIME ZONE %(tz)s)::date AS period,
           min(started_at) AS checked_in
    FROM sightings_checkin
    WHERE organization_id = %(organization)s AND outcome = 'passed' AND person_id IS NOT NULL
      AND started_at >= %(since)s AND started_at < %(until)s
      AND (%(person)s::bigint IS NULL OR person_id = %(person)s::bigint)
    GROUP BY 1, 2
)
"""
# The rows, in order (the first column is the count of all rows where one is asked for).
ROWS_SQL = """
       t.person_id, p.name, t.period, t.days, t.first_seen, t.last_seen, t.present,
       coalesce(t.cameras, '{}'), check_ins.checked_in
FROM totals t
JOIN gallery_person p ON p.id = t.person_id
LEFT JOIN check_ins ON check_ins.person_id = t.person_id AND check_ins.period = t.period
ORDER BY t.period, p.name, t.person_id
"""
# A slice of them (LIMIT NULL: all), each with the count of all.
ATTENDANCE_SQL = PERIODS_SQL + "SELECT count(*) OVER ()," + ROWS_SQL + "LIMIT %(limit)s OFFSET %(offset)s"
# All of them, without the count (a window over all rows would hold back the first).
STREAM_SQL = PERIODS_SQL + "SELECT NULL," + ROWS_SQL
COUNT_SQL = PERIODS_SQL + "SELECT count(*) FROM totals"


class Attendance(NamedTuple):
    """One person over one period (a day, a week from Monday, a month). A named tuple,
    not a dataclass: a month of a large organization's days is tens of thousands."""

    person_id: int
    person: str
    period: date  # its first day
    days: int  # days present
    first_seen: datetime
    last_seen: datetime
    present: timedelta
    cameras: tuple[str, ...]
    checked_in: datetime | None  # the first check-in at a kiosk that passed its challenge


class AttendanceSlice(NamedTuple):
    rows: list[Attendance]
    total: int  # rows in the whole range, whatever the slice


def _parameters(*, organization, since: date, until: date, period: str, person, group, camera) -> dict:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    zone = organization.zone
    return {
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


def _reader(organization):
    """Found rows to Attendance, in the organization's time zone, with camera names."""
    zone = organization.zone
    camera_names = dict(Camera.objects.filter(organization=organization).values_list("pk", "name"))

    def read(found) -> Attendance:
        _, person_id, name, start, days, first_seen, last_seen, present, cameras, checked_in = found
        return Attendance(
            person_id,
            name,
            start,
            days,
            first_seen.astimezone(zone),
            last_seen.astimezone(zone),
            present,
            tuple(sorted({camera_names[camera_id] for camera_id in cameras})),
            checked_in.astimezone(zone) if checked_in else None,
        )

    return read


def attendance(
    *,
    organization,
    since: date,
    until: date,
    period: str = "day",
    person=None,
    group=None,
    camera=None,
    offset: int = 0,
    limit: int | None = None,
) -> AttendanceSlice:
    """Days `since` to `until` (excluded), of the organization's time zone, ordered by
    period, then name: all of them, or `limit` from `offset`. A slice is taken by the
    same query that counts them all, so a page of a large organization's month costs
    the aggregation only, not tens of thousands of rows brought into Python."""
    params = _parameters(
        organization=organization, since=since, until=until, period=period, person=person, group=group, camera=camera
    )
    params |= {"offset": offset, "limit": limit}
    read = _reader(organization)
    with connection.cursor() as cursor:
        cursor.execute(ATTENDANCE_SQL, params)
        found = cursor.fetchall()
        if found:
            total = found[0][0]
        elif offset:  # past the end: no row to carry the count
            cursor.execute(COUNT_SQL, params)
            total = cursor.fetchone()[0]
        else:
            total = 0
    return AttendanceSlice([read(row) for row in found], total)


def attendance_stream(
    *, organization, since: date, until: date, period: str = "day", person=None, group=None, camera=None, chunk=2000
) -> Iterator[Attendance]:
    """All of attendance()'s rows, in its order, read `chunk` at a time from a
    server-side cursor (as QuerySet.iterator() reads): the CSV export of a year of
    days of a large organization, hundreds of thousands of rows, never holds them all."""
    params = _parameters(
        organization=organization, since=since, until=until, period=period, person=person, group=group, camera=camera
    )
    read = _reader(organization)
    with connection.chunked_cursor() as cursor:
        cursor.execute(STREAM_SQL, params)
        while found := cursor.fetchmany(chunk):
            yield from map(read, found)


def attendance_page(*, number, per_page: int, **query) -> Page:
    """One page of attendance(), as Django's paginator gives one (a number past the
    end is the last page, anything else not a number the first), read in one query."""
    try:
        wanted = max(1, int(number))
    except (TypeError, ValueError):
        wanted = 1
    found = attendance(offset=(wanted - 1) * per_page, limit=per_page, **query)
    page = Paginator(range(found.total), per_page).get_page(wanted)
    if page.number != wanted:
        found = attendance(offset=(page.number - 1) * per_page, limit=per_page, **query)
    page.object_list = found.rows
    return page


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
