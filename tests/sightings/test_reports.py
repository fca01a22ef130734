"""The report pages under /reports/: signed-in members only, one organization's data,
filters, CSV export, corrections, and bounded queries on 100,000 sightings."""

import csv
import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.gallery.models import Person
from apps.organizations.models import Camera
from apps.sightings import selectors, services
from apps.sightings.models import Correction, Sighting, StrangerProfile, Visit
from tests.sightings.recorded import record_sighting
from tests.tenants import make_tenant

pytestmark = pytest.mark.django_db

PAGES = ["/reports/", "/reports/sightings/", "/reports/sightings/?view=visits", "/reports/strangers/"]


@pytest.fixture
def tenants():
    a = make_tenant("alpha", "Ann Alpha", "alpha-door")
    b = make_tenant("beta", "Bob Beta", "beta-door", "img13.jpg")
    for tenant in (a, b):
        tenant.sighting.embedding = np.eye(128, dtype=np.float32)[2]
        tenant.sighting.save(update_fields=["embedding"])
        services.visit_assign(organization=tenant.organization, sighting=tenant.sighting)
    return a, b


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def unknown_sighting(tenant, seconds_ago: int = 60) -> Sighting:
    """An unknown face at the tenant's camera, grouped into a stranger profile."""
    at = timezone.now() - timedelta(seconds=seconds_ago)
    return record_sighting(
        tenant.organization, None, tenant.camera, at, similarity=0.01, axis=1, crop=tenant.sighting.crop.name
    )


def test_pages_need_a_signed_in_member(tenants, django_user_model):
    for page in PAGES:
        response = Client().get(page)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    outsider = django_user_model.objects.create_user("outsider")
    assert login(outsider).get("/reports/").status_code == 403


def test_a_viewer_sees_only_their_organizations_reports(tenants):
    a, b = tenants
    stranger = unknown_sighting(b)
    client = login(a.viewer)
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        assert b"Bob Beta" not in response.content and b"beta-door" not in response.content
    assert "Ann Alpha" in client.get("/reports/sightings/").content.decode()
    # The other organization's objects are 404, exactly like missing ones.
    for url in [
        f"/reports/sightings/{b.sighting.pk}/",
        f"/reports/people/{b.person.pk}/",
        f"/media/{b.sighting.crop.name}",
    ]:
        assert client.get(url).status_code == 404, url
    for url, data in [
        (f"/reports/sightings/{b.sighting.pk}/correct/", {"person": ""}),
        (f"/reports/sightings/{a.sighting.pk}/correct/", {"person": b.person.pk}),
        (f"/reports/strangers/{stranger.stranger_id}/promote/", {"name": "Eve"}),
        (f"/reports/strangers/{stranger.stranger_id}/dismiss/", {}),
    ]:
        response = client.post(url, data)
        assert response.status_code in (302, 404), url
    assert not Correction.objects.exists()
    assert StrangerProfile.objects.get().status == "open"
    assert Sighting.objects.get(pk=a.sighting.pk).person == a.person


def test_sighting_page_shows_the_face_the_match_and_the_quality(tenants):
    a, _ = tenants
    Sighting.objects.filter(pk=a.sighting.pk).update(
        matched_face=a.face_image,
        candidates=[{"person": {"id": a.person.pk, "name": "Ann Alpha"}, "distance": 0.01, "similarity": 0.99}],
        quality={"size": 120, "sharpness": 250.0, "confidence": 1.0, "yaw": 0.05, "roll": 2.0},
    )
    page = login(a.viewer).get(f"/reports/sightings/{a.sighting.pk}/").content.decode()
    assert f'src="/media/{a.sighting.crop.name}"' in page
    assert f'src="/media/{a.face_image.image.name}"' in page
    assert "0.990" in page and "120 px" in page
    assert 'id="not-this-person"' in page


def test_filters_select_sightings_and_visits(tenants):
    a, _ = tenants
    unknown = unknown_sighting(a)
    client = login(a.viewer)

    def rows(query: str) -> str:
        return client.get(f"/reports/sightings/?{query}").content.decode()

    assert f"/reports/sightings/{unknown.pk}/" in rows("known=no")
    assert f"/reports/sightings/{a.sighting.pk}/" not in rows("known=no")
    assert f"/reports/sightings/{a.sighting.pk}/" in rows(f"known=yes&person={a.person.pk}&camera={a.camera.pk}")
    assert f"/reports/sightings/{unknown.pk}/" not in rows("min_similarity=0.5")
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert "No sightings match." in rows(f"since={tomorrow}")
    assert "Ann Alpha" in rows("view=visits")
    assert "No visits match." in rows("view=visits&known=no")
    assert "min_similarity" in rows("min_similarity=7")  # an invalid value is shown, not a 500


def test_csv_export_follows_the_filters_and_is_audited(tenants):
    a, _ = tenants
    unknown_sighting(a)
    client = login(a.viewer)
    response = client.get("/reports/sightings/export/?known=yes")
    assert response["Content-Type"] == "text/csv"
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][:4] == ["sighting", "seen_at", "camera", "person"]
    assert [line[0] for line in lines[1:]] == [str(a.sighting.pk)]
    assert lines[1][3] == "Ann Alpha"
    visits = b"".join(client.get("/reports/sightings/export/?view=visits").streaming_content).decode()
    assert visits.splitlines()[1].split(",")[1] == "Ann Alpha"
    events = AuditEvent.objects.filter(action="exported", organization=a.organization).order_by("pk")
    assert [(e.user, e.detail["report"]) for e in events] == [(a.viewer, "sightings"), (a.viewer, "visits")]
    assert events[0].detail["filters"] == {"known": "yes"}


def test_correcting_and_promoting_from_the_pages(tenants, django_capture_on_commit_callbacks):
    a, _ = tenants
    client = login(a.viewer)
    response = client.post(f"/reports/sightings/{a.sighting.pk}/correct/", {"person": ""}, follow=True)
    assert "Reassigned to unknown." in response.content.decode()
    assert Sighting.objects.get(pk=a.sighting.pk).person is None
    assert not Visit.objects.filter(organization=a.organization).exists()
    profile = StrangerProfile.objects.get(organization=a.organization)
    assert f'id="stranger-{profile.pk}"' in client.get("/reports/strangers/").content.decode()

    with django_capture_on_commit_callbacks():  # the enrollment tasks are queued, not run here
        response = client.post(f"/reports/strangers/{profile.pk}/promote/", {"name": "Dora"}, follow=True)
    page = response.content.decode()
    assert "<h1>Dora</h1>" in page and "pending" in page
    assert Sighting.objects.get(pk=a.sighting.pk).person.name == "Dora"
    assert f'id="stranger-{profile.pk}"' not in client.get("/reports/strangers/").content.decode()


def test_dashboard_counts_and_charts(tenants):
    a, _ = tenants
    unknown_sighting(a)
    page = login(a.viewer).get("/reports/").content.decode()
    assert page.count("<svg") == 3
    assert '<div class="tile" id="unknown-share"><strong>50&nbsp;%' in page
    assert "alpha-door: 1" in page  # the per-camera chart's bar


def seed(organization, frame, sightings: int, visits: int) -> None:
    """Rows at the volume of a busy organization, spread over 4 cameras and 20 people
    (a third of the faces unknown) with varied similarity; written in SQL for speed."""
    cameras = [Camera.objects.create(organization=organization, name=f"camera {n}").pk for n in range(4)]
    people = [Person.objects.create(organization=organization, name=f"person {n}").pk for n in range(20)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sightings_sighting (organization_id, frame_id, camera_id, person_id, seen_at, distance, "
            "similarity, threshold, model_name, candidates, box_x, box_y, box_w, box_h, quality, quality_score, "
            "crop) SELECT %s, %s, (%s::bigint[])[1 + i %% 4], "
            "CASE WHEN i %% 3 = 0 THEN NULL ELSE (%s::bigint[])[1 + i %% 20] END, now() - i * interval '5 seconds', "
            "0.05, 0.5 + (i %% 50) / 100.0, 0.07, 'Dlib', '[]', 0, 0, 10, 10, '{}', 0.5, '' "
            "FROM generate_series(1, %s) i",
            [organization.pk, frame.pk, cameras, people, sightings],
        )
        cursor.execute(
            "INSERT INTO sightings_visit (organization_id, person_id, camera_id, started_at, ended_at, frames, "
            "sightings_count, confidence, closed) SELECT %s, (%s::bigint[])[1 + i %% 20], (%s::bigint[])[1 + i %% 4], "
            "now() - i * interval '1 minute', now() - i * interval '1 minute' + interval '20 seconds', 4, 4, "
            "0.5 + (i %% 50) / 100.0, true FROM generate_series(1, %s) i",
            [organization.pk, people, cameras, visits],
        )
        cursor.execute("ANALYZE sightings_sighting; ANALYZE sightings_visit")


def sequential_scans(queryset) -> list[str]:
    """The big tables that a query's plan reads in full (small ones may be, cheaply)."""
    found = []
    if queryset.query.is_empty():  # .none(): no query at all
        return found

    def walk(node):
        if node.get("Node Type") == "Seq Scan" and node["Relation Name"] in ("sightings_sighting", "sightings_visit"):
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        [(plan,)] = cursor.fetchall()
    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return found


FILTERS = [{}, {"known": False}, {"person": "PERSON"}, {"camera": "CAMERA", "min_similarity": 0.9}, {"since": "DAY"}]


def test_pages_stay_bounded_with_100k_sightings(tenants, django_assert_max_num_queries):
    a, _ = tenants
    seed(a.organization, a.frame, sightings=100_000, visits=20_000)
    values = {"PERSON": a.person.pk, "CAMERA": a.camera.pk, "DAY": timezone.now() - timedelta(days=2)}
    client = login(a.viewer)
    for named in FILTERS:
        filters = {key: values.get(value, value) for key, value in named.items()}
        page = selectors.sightings_filter(organization=a.organization, **filters).order_by("-seen_at", "-pk")[:50]
        assert not sequential_scans(page), (named, page.explain())
        visits = selectors.visits_filter(organization=a.organization, **filters).order_by("-started_at", "-pk")[:50]
        assert not sequential_scans(visits), (named, visits.explain())

        query = "&".join(
            f"{key}={'no' if value is False else value.date().isoformat() if hasattr(value, 'date') else value}"
            for key, value in filters.items()
        )
        for url in [f"/reports/sightings/?{query}", f"/reports/sightings/?view=visits&{query}&page=3"]:
            # Session, user, memberships, the filter form's choices, the count, one page of rows,
            # and the session's save (its idle expiry moves with every request; a savepoint in tests).
            with django_assert_max_num_queries(15):
                assert client.get(url).status_code == 200
    for url in ["/reports/", f"/reports/people/{a.person.pk}/", "/reports/strangers/"]:
        with django_assert_max_num_queries(15):
            assert client.get(url).status_code == 200
