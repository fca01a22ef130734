"""The IVFFlat search index: built on demand, used for galleries too large for exact
search, never crossing organizations; exact search when it is missing."""

import logging

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.core.errors import Conflict
from apps.core.tenancy import tenant_context
from apps.gallery import search
from apps.recognition.pipeline.calibration import cosine_distances
from benchmarks.gallery_search import FaceLikeEmbeddings, load_gallery

pytestmark = pytest.mark.django_db(transaction=True)

FACES = 900  # per organization, 5 photos a person


@pytest.fixture
def galleries(org_a, org_b, settings):
    """Two organizations' synthetic galleries, both above a lowered exact-search limit."""
    settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS = 500
    faces = FaceLikeEmbeddings(seed=7)
    loaded = {}
    for organization, _, _ in (org_a, org_b):
        people = np.repeat(np.arange(FACES // 5), 5)
        vectors = faces.photos(faces.identities(FACES // 5)[people])
        loaded[organization.pk] = (vectors, load_gallery(connection, organization.pk, vectors, people))
    search.forget_plan_facts()
    cache.clear()  # the missing-index warning is said once per ten minutes
    yield faces, loaded
    with connection.cursor() as cursor:
        for width in search.SEARCH_INDEX_WIDTHS:
            cursor.execute(f"DROP INDEX IF EXISTS {search.search_index_name(width)}")
    search.forget_plan_facts()


def nearest(organization_id: int, vector, model_name: str = "Dlib") -> list[int]:
    with tenant_context(organization_id):
        found = search.gallery_candidates(
            organization_id=organization_id, model_name=model_name, embedding=vector, limit=3
        )
    return [c.person_id for c in found]


def plan_of_search(queries) -> str:
    """The plan of the captured 1:K query with sorting off (at this size the planner may
    rightly prefer a sort of the organization's 900 rows; without it, it must take an
    index that matches the query's form)."""
    searched = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + searched)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_command_builds_the_index_when_needed_and_search_uses_it(galleries, org_a, org_b):
    faces, loaded = galleries
    status = search.search_index_status()
    assert status.faces == 2 * FACES and status.lists == 0 and status.needs_build

    call_command("search_index", "--if-needed")

    status = search.search_index_status()
    assert status.lists == 2 * FACES // search.FACES_PER_LIST and not status.needs_build
    organization_id = org_a[0].pk
    vectors, owners = loaded[organization_id]
    probes = faces.photos(vectors[::45])
    hits = 0
    with CaptureQueriesContext(connection) as queries:
        for probe in probes:
            found = nearest(organization_id, probe)
            hits += found[0] == owners[int(np.argmin(cosine_distances(probe[None], vectors)[0]))]
    assert hits == len(probes)  # 6 lists, 20 probed: the index sees every list
    assert f"Index Scan using {search.SEARCH_INDEX}" in plan_of_search(queries)


def test_each_embedding_width_gets_its_own_index(galleries, org_a):
    """A MobileFaceNet gallery (192-d) beside the Dlib ones (128-d): the command builds
    an index for each width, and each width's search goes through its own."""
    faces, loaded = galleries
    people = np.repeat(np.arange(FACES // 5), 5)
    wide = FaceLikeEmbeddings(seed=11, dimensions=192)
    vectors = wide.photos(wide.identities(FACES // 5)[people])
    owners = load_gallery(connection, org_a[0].pk, vectors, people, model="MobileFaceNet")
    search.forget_plan_facts()
    assert search.search_index_status(192).needs_build and search.search_index_status(512).faces == 0

    call_command("search_index", "--if-needed")

    assert search.search_index_lists(128) == 2 * FACES // search.FACES_PER_LIST
    assert search.search_index_lists(192) == FACES // search.FACES_PER_LIST
    assert search.search_index_lists(512) == 0  # no 512-d faces: nothing to learn lists from
    probe = wide.photos(vectors[7:8])[0]
    with CaptureQueriesContext(connection) as queries:
        assert nearest(org_a[0].pk, probe, model_name="MobileFaceNet")[0] == owners[7]
    assert f"Index Scan using {search.search_index_name(192)}" in plan_of_search(queries)


def test_indexed_search_stays_inside_the_organization(galleries, org_a, org_b):
    faces, loaded = galleries
    search.search_index_build()
    theirs_vectors, theirs = loaded[org_b[0].pk]
    ours = set(loaded[org_a[0].pk][1].tolist())
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")  # through the index, not a sort of one organization's rows
    try:
        # Copies of the other organization's photos: its rows are the nearest in the table.
        for probe in theirs_vectors[::90]:
            found = nearest(org_a[0].pk, probe)
            assert found and set(found) <= ours
            assert nearest(org_b[0].pk, probe)[0] in set(theirs.tolist())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")


def test_without_the_index_a_large_gallery_is_searched_exactly_and_says_how_to_fix_it(galleries, org_a, caplog):
    faces, loaded = galleries
    vectors, owners = loaded[org_a[0].pk]
    with caplog.at_level(logging.WARNING, logger="apps.gallery.search"):
        with CaptureQueriesContext(connection) as queries:
            found = nearest(org_a[0].pk, vectors[10])
    assert found[0] == owners[10]
    assert "manage.py search_index --build" in caplog.text
    searched = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"])
    assert "vector(128)" not in searched  # the plain column: no index can serve it


def test_one_build_at_a_time(galleries):
    # Another session is building (it holds the lock): this one is told so and builds nothing.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [search.SEARCH_INDEX_BUILD_LOCK])
        with pytest.raises(Conflict) as refused:
            search.search_index_build()
        assert refused.value.code == "index_build_running"
    finally:
        other.close()
    assert search.search_index_lists() == 0


@pytest.mark.parametrize("budget_mb, lists", [(4096, 4000), (300, 980)])
def test_the_build_stays_within_its_memory_budget(settings, budget_mb, lists):
    settings.SEARCH_INDEX_BUILD_MEMORY_MB = budget_mb
    status = search.SearchIndexStatus(faces=1_200_000, lists=0)
    # A list per 300 faces, or fewer, longer lists when k-means would need more memory.
    assert abs(status.wanted_lists - lists) <= 0.05 * lists
    assert search.index_build_memory_mb(status.wanted_lists) <= budget_mb
    # An index with what the budget allows is not rebuilt every day.
    assert not search.SearchIndexStatus(faces=1_200_000, lists=status.wanted_lists).needs_build


def test_the_index_is_rebuilt_once_its_lists_are_twice_as_long(settings):
    settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS = 20000
    assert not search.SearchIndexStatus(faces=20000, lists=0).needs_build  # all galleries searched exactly
    assert search.SearchIndexStatus(faces=20001, lists=0).needs_build
    assert not search.SearchIndexStatus(faces=120_000, lists=300).needs_build  # 400 faces a list
    assert search.SearchIndexStatus(faces=120_000, lists=200).needs_build  # 600 faces a list


def test_a_search_probes_a_share_of_the_lists_set_once_a_connection(galleries, org_a, settings, monkeypatch):
    faces, loaded = galleries
    call_command("search_index", "--if-needed")
    lists = search.search_index_status().lists
    settings.RECOGNITION_IVFFLAT_PROBES = 1
    monkeypatch.setattr(search, "LISTS_PER_PROBE", 2)
    wanted = search.ivfflat_probes(lists)
    assert wanted == -(-lists // 2) > 1
    organization_id = org_a[0].pk
    vectors, _ = loaded[organization_id]

    def probes_set() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW ivfflat.probes")
            return cursor.fetchone()[0]

    with CaptureQueriesContext(connection) as queries:
        for vector in vectors[:3]:
            nearest(organization_id, vector)
    assert probes_set() == str(wanted)
    assert sum("ivfflat.probes" in q["sql"] for q in queries.captured_queries) == 1  # once, not every search

    # A transaction that rolls back takes its setting with it: the next search sets it again.
    monkeypatch.setattr(search, "LISTS_PER_PROBE", 1)
    with transaction.atomic():
        nearest(organization_id, vectors[0])
        assert probes_set() == str(lists)
        transaction.set_rollback(True)
    assert probes_set() == str(wanted)
    nearest(organization_id, vectors[0])
    assert probes_set() == str(lists)
