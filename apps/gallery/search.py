"""The gallery's 1:K search: the nearest enrolled people to a face (exact for small
galleries, through an IVFFlat index for large ones), and that index's upkeep."""

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.core.errors import Conflict
from apps.gallery.models import FaceEmbedding
from apps.recognition.pipeline import catalog, match

logger = logging.getLogger(__name__)

# Enrolled faces whose people are scored by template per query; several may belong
# to the same person.
NEIGHBOURS_FETCHED = 20

# The approximate indexes for large galleries: one IVFFlat index per embedding width,
# over the cast of the embedding to that width (the column has no fixed dimension:
# Dlib and Facenet are 128-d, MobileFaceNet 192, Facenet512 and Faceplugin 512), each
# partial on its width, built and rebuilt by search_index_build. Without one, that
# width's galleries are searched exactly. IVFFlat rather than HNSW: at a million faces
# HNSW needed ef_search 400 for recall@1 0.995 (29 ms p95), IVFFlat with 20 probes 8 ms
# for the same (README, benchmark).
SEARCH_INDEX_WIDTHS = tuple(sorted({spec.dimensions for spec in catalog.MODELS.values()}))


def search_index_name(dimensions: int) -> str:
    return f"gallery_faceembedding_ivfflat_{dimensions}"


SEARCH_INDEX = search_index_name(128)  # Dlib's width, which the benchmark's gallery has
# Lists are sized for about this many faces each (benchmark).
FACES_PER_LIST = 300
# A search probes RECOGNITION_IVFFLAT_PROBES lists at least, and one list in this many:
# what IVFFlat misses grows with the share of lists left unprobed. At a million
# MobileFaceNet faces (4,000 lists) 20 probes found the nearest person for 0.945 of new
# photos, 40 for 0.975-0.985, 80 for 1.000 (p50 14 ms); at 100,000 (1,000 lists) 20
# found them all (README, "The search index").
LISTS_PER_PROBE = 50


def ivfflat_probes(lists: int) -> int:
    """Lists a search of an index of `lists` lists probes."""
    return max(settings.RECOGNITION_IVFFLAT_PROBES, math.ceil(lists / LISTS_PER_PROBE))


def use_probes(probes: int) -> None:
    """Set the lists IVFFlat probes on this connection, unless it is set already: a
    round trip only when the index (or the width searched) changes. Inside a
    transaction the setting may be rolled back, so it is set and then forgotten."""
    if connection.in_atomic_block or getattr(connection, "ivfflat_probes", None) != probes:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('ivfflat.probes', %s, false)", [str(probes)])
    connection.ivfflat_probes = None if connection.in_atomic_block else probes


def index_build_memory_mb(lists: int, dimensions: int = 128) -> int:
    """Memory pgvector's k-means needs to learn `lists` lists: it samples 50 rows a list
    and keeps a bound per sample and list, so it grows with the square of the lists
    (4,000 lists of 128-d faces: about 3.3 GB)."""
    samples = 50 * lists
    return math.ceil(samples * 4 * (dimensions + lists) * 1.1 / 2**20) + 64


# The facts that choose a search plan, kept for a minute in each process: they change
# slowly, a slightly old one does no harm, and a shared cache would cost a round trip
# on every search.
PLAN_FACTS_SECONDS = 60
_plan_facts: dict[str, tuple[float, int]] = {}


def _plan_fact(key: str, compute) -> int:
    now = time.monotonic()
    known = _plan_facts.get(key)
    if known is None or known[0] <= now:
        known = (now + PLAN_FACTS_SECONDS, compute())
        _plan_facts[key] = known
    return known[1]


def forget_plan_facts() -> None:
    """After a search index build, or in tests that change the gallery under one process."""
    _plan_facts.clear()


def gallery_size(*, organization_id: int, model_name: str) -> int:
    """How many enrolled faces the organization has for a model (a plan fact)."""
    return _plan_fact(
        f"gallery-size:{organization_id}:{model_name}",
        lambda: FaceEmbedding.objects.filter(organization_id=organization_id, model_name=model_name).count(),
    )


@dataclass(frozen=True)
class SearchIndexStatus:
    faces: int  # enrolled faces of this width the index covers (all organizations)
    lists: int  # lists of the valid index; 0 when there is none
    dimensions: int = 128

    @property
    def wanted_lists(self) -> int:
        """A list per FACES_PER_LIST faces, as many as SEARCH_INDEX_BUILD_MEMORY_MB can train."""
        lists = max(1, self.faces // FACES_PER_LIST)
        while lists > 1 and index_build_memory_mb(lists, self.dimensions) > settings.SEARCH_INDEX_BUILD_MEMORY_MB:
            lists = int(lists * 0.95)
        return lists

    @property
    def needs_build(self) -> bool:
        """No index while some gallery may outgrow exact search, or one with half the
        lists today's faces call for (its lists have grown twice as long)."""
        if self.faces <= settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS:
            return False
        return self.lists == 0 or self.wanted_lists >= 2 * self.lists


def search_index_lists(dimensions: int = 128) -> int:
    """The number of lists of the width's valid search index, 0 when there is none (an
    index still being built is not valid)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reloptions FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = %s AND i.indisvalid",
            [search_index_name(dimensions)],
        )
        row = cursor.fetchone()
    if row is None:
        return 0
    options = dict(option.split("=", 1) for option in row[0] or [])
    return int(options.get("lists", 100))  # pgvector's default


def search_index_status(dimensions: int = 128) -> SearchIndexStatus:
    faces = FaceEmbedding.objects.filter(dimensions=dimensions).count()
    return SearchIndexStatus(faces=faces, lists=search_index_lists(dimensions), dimensions=dimensions)


def ready_index_lists(dimensions: int) -> int:
    """The lists of the width's search index, 0 when there is none (a plan fact)."""
    return _plan_fact(f"search-index-lists:{dimensions}", lambda: search_index_lists(dimensions))


def _vector_literal(embedding: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(embedding, dtype=np.float32)) + "]"


def gallery_candidates(
    *, organization_id: int, model_name: str, embedding: np.ndarray, limit: int, probes: int | None = None
) -> list[match.Candidate]:
    """The closest people in one organization's gallery, each scored by the cosine
    distance to their template: the normalized mean of their enrolled photos'
    normalized embeddings (on lfw-dev with three photos a person, it misses half as
    many of their new photos at the same share of strangers accepted as the nearest
    photo does; README). Each candidate carries the person's nearest photo.

    People are found by their nearest photos in pgvector, then scored by template. A
    gallery of up to RECOGNITION_EXACT_SEARCH_MAX_ROWS faces is searched exactly: its
    rows come from the organization index and every distance is computed (a few ms,
    recall 1). A larger one uses the IVFFlat search index, probing ivfflat_probes(lists)
    lists (or `probes`: the benchmark measures others) with iterative scans (set on
    every connection by configure_connection), so that the organization filter cannot
    starve it of rows. One query, no transaction: this runs for every face of every
    frame."""
    literal = _vector_literal(embedding)
    dimensions = len(embedding)
    approximate = (
        dimensions in SEARCH_INDEX_WIDTHS
        and gallery_size(organization_id=organization_id, model_name=model_name)
        > settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS
    )
    lists = ready_index_lists(dimensions) if approximate else 0
    if approximate and not lists:
        approximate = False
        if cache.add("search-index-missing-warned", True, timeout=600):
            logger.warning(
                "Organization %s has a gallery too large for exact search and there is no search index; "
                "run `python manage.py search_index --build`.",
                organization_id,
            )
    if approximate:
        use_probes(probes or ivfflat_probes(lists))
    # Only the cast to the width matches its index: the plain column is scanned exactly.
    cast = f"vector({dimensions})" if approximate else "vector"
    column = f"(embedding::{cast})" if approximate else "embedding"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH near AS (SELECT DISTINCT person_id FROM (SELECT person_id FROM gallery_faceembedding "
            f"WHERE organization_id = %s AND model_name = %s AND dimensions = %s "
            f"ORDER BY {column} <=> %s::{cast} LIMIT %s) nearest) "
            "SELECT e.person_id, avg(l2_normalize(e.embedding)) <=> %s::vector AS distance, "
            "(array_agg(e.face_image_id ORDER BY e.embedding <=> %s::vector))[1] "
            "FROM gallery_faceembedding e JOIN near ON near.person_id = e.person_id "
            "WHERE e.organization_id = %s AND e.model_name = %s AND e.dimensions = %s "
            "GROUP BY e.person_id",
            [
                organization_id,
                model_name,
                dimensions,
                literal,
                NEIGHBOURS_FETCHED,
                literal,
                literal,
                organization_id,
                model_name,
                dimensions,
            ],
        )
        scored = cursor.fetchall()
    return match.best_per_person(scored, limit)


def configure_connection(sender, connection, **kwargs) -> None:
    """Search settings for every new database connection (connection_created), so that
    a search costs one round trip. They only touch IVFFlat scans; set before pgvector
    is loaded they wait as placeholders, which pgvector adopts when it loads."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('ivfflat.probes', %s, false), "
            "set_config('ivfflat.iterative_scan', 'relaxed_order', false)",
            [str(settings.RECOGNITION_IVFFLAT_PROBES)],
        )
    connection.ivfflat_probes = settings.RECOGNITION_IVFFLAT_PROBES


def negative_distances(
    *, organization_id: int, model_name: str, embedding: np.ndarray, person_ids: list[int]
) -> dict[int, float]:
    """For each of these people, the distance from the embedding to the nearest face
    that a user corrected away from them (apps.sightings Correction): the negative
    examples of match.decide. Corrections are few, so this is an exact scan."""
    if not person_ids:
        return {}
    literal = _vector_literal(embedding)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.from_person_id, min(s.embedding <=> %s::vector) FROM sightings_correction c "
            "JOIN sightings_sighting s ON s.id = c.sighting_id "
            "WHERE c.organization_id = %s AND c.from_person_id = ANY(%s) AND s.model_name = %s "
            "AND vector_dims(s.embedding) = %s GROUP BY c.from_person_id",
            [literal, organization_id, list(person_ids), model_name, len(embedding)],
        )
        return {person_id: float(distance) for person_id, distance in cursor.fetchall()}


def person_distance(*, person_id: int, model_name: str, embedding: np.ndarray) -> float:
    """Cosine distance from an embedding to the person's template (as in 1:K)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT avg(l2_normalize(embedding)) <=> %s::vector FROM gallery_faceembedding "
            "WHERE person_id = %s AND model_name = %s AND dimensions = %s",
            [_vector_literal(embedding), person_id, model_name, len(embedding)],
        )
        distance = cursor.fetchone()[0]
    return float("inf") if distance is None else float(distance)


# --- Building the search index ------------------------------------------------------

# Session advisory lock key: one build at a time (the beat task and the command may meet).
SEARCH_INDEX_BUILD_LOCK = 0x5EA2C11D


def search_index_build(dimensions: int = 128) -> SearchIndexStatus:
    """(Re)build the width's IVFFlat search index for today's faces, without blocking
    enrollment or matching: the new index is built concurrently next to the old one,
    which keeps serving until it is swapped out. IVFFlat learns its lists from the
    rows present, so it is built once galleries have grown and rebuilt as they grow
    (SearchIndexStatus.needs_build)."""
    if dimensions not in SEARCH_INDEX_WIDTHS:
        raise ValueError(f"No model embeds in {dimensions} dimensions; widths: {SEARCH_INDEX_WIDTHS}")
    index = search_index_name(dimensions)
    building = f"{index}_new"
    lists = search_index_status(dimensions).wanted_lists
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEARCH_INDEX_BUILD_LOCK])
        if not cursor.fetchone()[0]:
            raise Conflict("A search index build is already running.", code="index_build_running")
        try:
            # pgvector refuses to train with less (wanted_lists stays within the budget).
            cursor.execute(f"SET maintenance_work_mem = '{index_build_memory_mb(lists, dimensions)}MB'")
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")  # left by an interrupted build
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY {building} ON gallery_faceembedding USING ivfflat "
                f"((embedding::vector({dimensions})) vector_cosine_ops) "
                f"WITH (lists = {lists}) WHERE dimensions = {dimensions}"
            )
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
            cursor.execute(f"ALTER INDEX {building} RENAME TO {index}")
            cursor.execute("ANALYZE gallery_faceembedding")
        finally:
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SEARCH_INDEX_BUILD_LOCK])
    forget_plan_facts()
    return search_index_status(dimensions)


def search_index_maintain() -> dict:
    """Build each width's search index when its SearchIndexStatus says so (the daily
    beat task)."""
    report = {}
    for dimensions in SEARCH_INDEX_WIDTHS:
        status = search_index_status(dimensions)
        built = status.needs_build
        if built:
            status = search_index_build(dimensions)
        report[str(dimensions)] = {"built": built, "faces": status.faces, "lists": status.lists}
    return report
