"""1:K search for one organization among other organizations' rows (synthetic
face-like embeddings COPYed into the production tables): the service's own path and
HNSW for comparison. Imported after django.setup()."""

import io
import json
import sys
import time
import uuid
from dataclasses import dataclass
from functools import partial

import numpy as np
from django.conf import settings
from django.db import connection

from apps.core.tenancy import tenant_context
from apps.gallery import search
from apps.organizations.services import organization_create
from apps.recognition.pipeline import match
from apps.recognition.pipeline.calibration import cosine_distances
from benchmarks.common import percentile


@dataclass(frozen=True)
class EmbeddingShape:
    """How a model's embeddings lie (cosine): identities spread by `spread` around a common
    direction, photos by `noise` around their identity, in `dimensions`. Two photos of one
    person are then about noise² / (1 + noise²) apart, of two people about
    1 - 1 / ((1 + spread²)(1 + noise²))."""

    dimensions: int
    spread: float
    noise: float


# Dlib on the shared photos: one person's photos about 0.03 apart, two people about 0.17.
# MobileFaceNet on lfw-dev (its face cache): a new photo of a person 0.23 from the one
# enrolled (median), two people 0.98 apart (median), the mean embedding's length 0.15.
SHAPES = {
    "Dlib": EmbeddingShape(dimensions=128, spread=0.45, noise=0.18),
    "MobileFaceNet": EmbeddingShape(dimensions=192, spread=6.9, noise=0.55),
}


class FaceLikeEmbeddings:
    """Identities as clusters, shaped like a model's embeddings (SHAPES; Dlib's unless
    told)."""

    def __init__(self, seed: int = 0, dimensions: int = 128, shape: EmbeddingShape | None = None):
        self.shape = shape or EmbeddingShape(dimensions, SHAPES["Dlib"].spread, SHAPES["Dlib"].noise)
        self.rng = np.random.default_rng(seed)
        self.dimensions = self.shape.dimensions
        self.mean = self._unit(self.rng.normal(size=self.dimensions))

    @staticmethod
    def _unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def identities(self, count: int) -> np.ndarray:
        # Spread around a common direction: real embeddings share one, so impostors are
        # closer to each other than random vectors would be (for Dlib, far closer).
        spread = self.shape.spread * self._unit(self.rng.normal(size=(count, self.dimensions)))
        return self._unit(self.mean + spread)

    def photos(self, centers: np.ndarray) -> np.ndarray:
        noise = self.shape.noise * self._unit(self.rng.normal(size=centers.shape))
        return self._unit(centers + noise).astype(np.float32)


CREATED = "2026-01-01 00:00:00+00"
EMBEDDING_COPY = (
    "COPY gallery_faceembedding (organization_id, face_image_id, person_id, model_name, dimensions, detector, "
    "embedding, box_x, box_y, box_w, box_h, quality, created_at) FROM STDIN"
)


def load_gallery(connection, organization_id: int, vectors: np.ndarray, people: np.ndarray, model: str = "Dlib"):
    """COPY a gallery straight into the production tables (people, photos, embeddings)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('gallery_person_id_seq')")
        first_person = cursor.fetchone()[0]
        person_ids = first_person + np.arange(people.max() + 1)
        cursor.execute("SELECT setval('gallery_person_id_seq', %s)", [int(person_ids[-1])])
        raw = cursor.connection
        with raw.cursor() as copy:
            buffer = io.StringIO(
                "".join(f"{pid}\t{organization_id}\tbench\t\t2026-01-01 00:00:00+00\n" for pid in person_ids)
            )
            copy.copy_expert(
                "COPY gallery_person (id, organization_id, name, external_id, created_at) FROM STDIN", buffer
            )
            cursor.execute("SELECT nextval('gallery_faceimage_id_seq')")
            first_image = cursor.fetchone()[0]
            image_ids = first_image + np.arange(len(vectors))
            cursor.execute("SELECT setval('gallery_faceimage_id_seq', %s)", [int(image_ids[-1])])
            buffer = io.StringIO(
                "".join(
                    f"{iid}\t{organization_id}\t{person_ids[p]}\tbench.jpg\tenrolled\t\t\t[]\t{{}}\t{CREATED}\n"
                    for iid, p in zip(image_ids, people, strict=True)
                )
            )
            copy.copy_expert(
                "COPY gallery_faceimage (id, organization_id, person_id, image, status, reason, detail, warnings, "
                "quality, created_at) FROM STDIN",
                buffer,
            )
            lines = []
            width = vectors.shape[1]
            for iid, p, vector in zip(image_ids, people, vectors, strict=True):
                text = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
                lines.append(
                    f"{organization_id}\t{iid}\t{person_ids[p]}\t{model}\t{width}\tdlib\t{text}\t0\t0\t1\t1\t{{}}\t"
                    "2026-01-01 00:00:00+00\n"
                )
                if len(lines) == 20_000:
                    copy.copy_expert(
                        EMBEDDING_COPY,
                        io.StringIO("".join(lines)),
                    )
                    lines = []
            if lines:
                copy.copy_expert(
                    EMBEDDING_COPY,
                    io.StringIO("".join(lines)),
                )
    # Map back: the person id of every row, for recall against exact search.
    return person_ids[people]


def hnsw_index(dimensions: int) -> str:
    return f"bench_hnsw_{dimensions}"


HNSW_PLAN = "hnsw (comparison)"


def exact_owners(probe_vectors, gallery, owners) -> np.ndarray:
    """The owner of each probe's nearest photo, by exact NumPy search (in chunks: a
    million-photo gallery makes a large distance matrix)."""
    nearest = [np.argmin(cosine_distances(chunk, gallery), axis=1) for chunk in np.array_split(probe_vectors, 20)]
    return owners[np.concatenate(nearest)]


def search_probe(probe_vectors, expected, search) -> dict:
    """p50 / p95 of `search(vector) -> person ids, best first` and its recall@1 against
    the exact answers. Only the searches run in the timed loop: NumPy's threads busy
    between them would take the cores from the database."""
    for vector in probe_vectors[:5]:
        search(vector)  # warm-up
    latencies, found = [], []
    for vector in probe_vectors:
        started = time.perf_counter()
        found.append(search(vector))
        latencies.append(time.perf_counter() - started)
    hits = sum(bool(people) and people[0] == owner for people, owner in zip(found, expected, strict=True))
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "recall_at_1": hits / len(probe_vectors),
    }


def in_memory(connection, dimensions: int) -> None:
    """Read the table and the search index into PostgreSQL's shared buffers, as they are
    in a service that has been running: the benchmark measures search, not a cold
    cache. COPY and sequential scans of a large table go through a small ring of
    buffers, so the table is read through its primary key, and the index by one search
    that visits every list. (A new HNSW index is in the buffers already: its build
    wrote it there.)"""
    search.use_probes(32768)  # every list
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SELECT count(person_id) FROM gallery_faceembedding WHERE id > 0")
        cursor.execute("SET enable_sort = off")  # only the search index can give the order
        vector = f"vector({dimensions})"
        cursor.execute(
            f"SELECT embedding::{vector} FROM gallery_faceembedding WHERE dimensions = %s LIMIT 1", [dimensions]
        )
        literal = cursor.fetchone()[0]
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM gallery_faceembedding WHERE dimensions = %s "
            f"ORDER BY (embedding::{vector}) <=> %s::{vector} LIMIT 1",
            [dimensions, literal],
        )
        plan = json.dumps(cursor.fetchone()[0])
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
    if search.search_index_name(dimensions) not in plan:
        sys.exit(f"The warm-up did not go through the search index: {plan}")


class SearchedGallery:
    """One organization's gallery, grown size by size among other organizations' rows."""

    def __init__(self, other_rows: int, model: str):
        if model not in SHAPES:
            sys.exit(
                f"Search is measured on embeddings shaped like {' or '.join(SHAPES)}'s, not {model}'s: "
                "give --model one of them."
            )
        self.model, self.faces = model, FaceLikeEmbeddings(seed=1, shape=SHAPES[model])
        self.dimensions = self.faces.dimensions
        # Other organizations' rows, loaded once: the searched organization is never alone.
        others = organization_create(
            slug=f"bench-others-{uuid.uuid4().hex[:6]}", recognition_model=model, detector="blazeface"
        )
        centers = self.faces.identities(max(1, other_rows // 5))
        people = np.repeat(np.arange(len(centers)), 5)[:other_rows]
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {search.search_index_name(self.dimensions)}")
            cursor.execute(f"DROP INDEX IF EXISTS {hnsw_index(self.dimensions)}")  # left by an interrupted run
        load_gallery(connection, others.pk, self.faces.photos(centers[people]), people, model)
        self.organization = organization_create(
            slug=f"bench-search-{uuid.uuid4().hex[:6]}", recognition_model=model, detector="blazeface"
        )
        self.vectors, self.owners = np.empty((0, self.dimensions), np.float32), np.empty(0, np.int64)

    def grow_to(self, size: int) -> float:
        """Add photos (5 a person) up to `size`, then build the search index as
        `manage.py search_index` does; seconds the build took."""
        add = size - len(self.vectors)
        centers = self.faces.identities(max(1, add // 5))
        people = np.repeat(np.arange(len(centers)), 5)[:add]
        vectors = self.faces.photos(centers[people])
        with connection.cursor() as cursor:
            # Loading is faster without a live index to insert into: build it after.
            cursor.execute(f"DROP INDEX IF EXISTS {search.search_index_name(self.dimensions)}")
        owners = load_gallery(connection, self.organization.pk, vectors, people, self.model)
        self.vectors = np.concatenate([self.vectors, vectors])
        self.owners = np.concatenate([self.owners, owners])
        search.forget_plan_facts()
        with connection.cursor() as cursor:
            # What autovacuum does to freshly loaded rows in a live system, done now rather
            # than in the middle of the measurement.
            cursor.execute("VACUUM ANALYZE gallery_faceembedding")
        started = time.perf_counter()
        self.index = search.search_index_build(self.dimensions)
        build_seconds = time.perf_counter() - started
        in_memory(connection, self.dimensions)
        return build_seconds

    def probes(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """New photos of enrolled people (the hard case for an index: near, not equal),
        and the owner exact search finds for each."""
        rng = np.random.default_rng(len(self.vectors))
        vectors = self.faces.photos(self.vectors[rng.choice(len(self.vectors), size=count, replace=False)])
        return vectors, exact_owners(vectors, self.vectors, self.owners)

    def service_search(self, vector, probes: int | None = None) -> list[int]:
        found = search.gallery_candidates(
            organization_id=self.organization.pk, model_name=self.model, embedding=vector, limit=1, probes=probes
        )
        return [c.person_id for c in found]

    def hnsw_search(self, vector) -> list[int]:
        literal = "[" + ",".join(f"{x:.8g}" for x in vector) + "]"
        vector_type = f"vector({self.dimensions})"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT person_id, (embedding::{vector_type}) <=> %s::{vector_type}, face_image_id "
                "FROM gallery_faceembedding WHERE organization_id = %s AND model_name = %s AND dimensions = %s "
                f"ORDER BY (embedding::{vector_type}) <=> %s::{vector_type} LIMIT %s",
                [literal, self.organization.pk, self.model, self.dimensions, literal, search.NEIGHBOURS_FETCHED],
            )
            return [c.person_id for c in match.best_per_person(cursor.fetchall(), 1)]


def service_rows(gallery: SearchedGallery, probes, expected, row: dict) -> list[dict]:
    """The service's path: exact below RECOGNITION_EXACT_SEARCH_MAX_ROWS, else the IVFFlat
    index at its default probes (search.ivfflat_probes), half and double."""
    if len(gallery.vectors) <= settings.RECOGNITION_EXACT_SEARCH_MAX_ROWS:
        return [{**row, "plan": "exact", "setting": "", **search_probe(probes, expected, gallery.service_search)}]
    default = search.ivfflat_probes(gallery.index.lists)
    rows = []
    for lists_probed in sorted({default // 2, default, default * 2}):
        rows.append(
            {
                **row,
                "plan": "ivfflat",
                "setting": f"{gallery.index.lists} lists, probes {lists_probed}",
                "default": lists_probed == default,
                **search_probe(probes, expected, partial(gallery.service_search, probes=lists_probed)),
            }
        )
    return rows


def build_hnsw(dimensions: int) -> float:
    """HNSW (pgvector's defaults: m 16, ef_construction 64) alone on the expression, in
    place of the search index; seconds the build took. DDL needs the owner's role."""
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP INDEX IF EXISTS {search.search_index_name(dimensions)}")
        cursor.execute("SET maintenance_work_mem = '4GB'")
        started = time.perf_counter()
        cursor.execute(
            f"CREATE INDEX {hnsw_index(dimensions)} ON gallery_faceembedding "
            f"USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops) WHERE dimensions = {dimensions}"
        )
        seconds = time.perf_counter() - started
        cursor.execute("ANALYZE gallery_faceembedding")
        cursor.execute("SET hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET ROLE faces_tenant")
    return seconds


def drop_hnsw(dimensions: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP INDEX {hnsw_index(dimensions)}")


def hnsw_rows(gallery: SearchedGallery, probes, expected, row: dict) -> list[dict]:
    row = {**row, "index_build_s": build_hnsw(gallery.dimensions), "plan": HNSW_PLAN}
    rows = []
    for ef_search in (100, 200, 400):
        with connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {ef_search}")
        setting = f"m 16, ef_construction 64, ef_search {ef_search}"
        rows.append({**row, "setting": setting, **search_probe(probes, expected, gallery.hnsw_search)})
    drop_hnsw(gallery.dimensions)
    return rows


def bench_search(
    sizes: list[int], other_rows: int, probes: int, hnsw_sizes: list[int], model: str = "Dlib"
) -> list[dict]:
    """The service's own search path (exact, or the IVFFlat search index of the model's
    width as `manage.py search_index` builds it) at each size, with other probe counts
    beside the default; and at `hnsw_sizes` HNSW for comparison (why the service does not
    use it). Embeddings shaped like `model`'s."""
    gallery = SearchedGallery(other_rows, model)
    results = []
    for size in sizes:
        build_seconds = gallery.grow_to(size)
        probe_vectors, expected = gallery.probes(probes)
        row = {
            "size": size,
            "other_rows": other_rows,
            "probes": probes,
            "index_build_s": build_seconds,
            "dimensions": gallery.dimensions,
        }
        with tenant_context(gallery.organization.pk):
            measured = service_rows(gallery, probe_vectors, expected, row)
            if size in hnsw_sizes:
                measured += hnsw_rows(gallery, probe_vectors, expected, row)
        for result in measured:
            print(f"  search {size}: {result}", flush=True)
        results += measured
    return results
