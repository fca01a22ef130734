"""Against DeepFace's `find` on the same gallery size, probes, model and detector.
Imported after django.setup()."""

import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from deepface import DeepFace
from deepface.modules import recognition
from deepface.modules.filestore import build_file_store
from django.conf import settings
from django.db import connection

from apps.core.tenancy import tenant_context
from apps.gallery import search
from apps.organizations.services import organization_create
from apps.recognition.pipeline.engine import FaceAnalyzer
from apps.recognition.pipeline.images import decode_image
from benchmarks.gallery_search import FaceLikeEmbeddings, load_gallery


def bench_find(sizes: list[int], probes: list[bytes], organization) -> list[dict]:
    """DeepFace's `find` against this service's identify path on the same gallery size,
    probes, model (Dlib) and detector (dlib). Galleries are precomputed embeddings: for
    DeepFace its own datastore file, for the service the same vectors in pgvector."""
    analyzer = FaceAnalyzer(
        model_name="Dlib",
        detector="dlib",
        deepface_home=settings.DEEPFACE_HOME,
        detect_max_side=settings.RECOGNITION_DETECT_MAX_SIDE,
        model_threads=settings.RECOGNITION_MODEL_THREADS,
    )
    faces = FaceLikeEmbeddings(seed=2)
    results = []
    for size in sizes:
        centers = faces.identities(max(1, size // 5))
        people = np.repeat(np.arange(len(centers)), 5)[:size]
        vectors = faces.photos(centers[people])
        folder = Path(tempfile.mkdtemp(prefix="deepface-find-"))
        store = build_file_store(str(folder))
        representations = [
            {
                "identity": str(folder / f"person{p}" / f"{i}.jpg"),
                "hash": f"{i:040x}",
                "embedding": v.astype(float).tolist(),
                "target_x": 0,
                "target_y": 0,
                "target_w": 150,
                "target_h": 150,
            }
            for i, (p, v) in enumerate(zip(people, vectors, strict=True))
        ]
        name = "ds_model_dlib_detector_dlib_aligned_normalization_base_expand_0.npz"
        getattr(recognition, "__save_representations")(
            store=store, datastore_path=store.join(name), datastore_format="npz", representations=representations
        )
        gallery_org = organization_create(
            slug=f"bench-find-{uuid.uuid4().hex[:6]}", recognition_model="Dlib", detector="dlib"
        )
        with connection.cursor() as cursor:
            # The gallery alone in the table, like DeepFace's datastore; index built after loading.
            cursor.execute("TRUNCATE gallery_person, gallery_faceimage, gallery_faceembedding CASCADE")
            cursor.execute(f"DROP INDEX IF EXISTS {search.SEARCH_INDEX}")
        load_gallery(connection, gallery_org.pk, vectors, people)
        search.search_index_build()
        probe_files = []
        for index, data in enumerate(probes):
            path = folder / f"probe{index}.jpg"
            path.write_bytes(data)
            probe_files.append(path)

        def deepface_find(path, folder=folder):
            DeepFace.find(
                img_path=str(path),
                db_path=str(folder),
                model_name="Dlib",
                detector_backend="dlib",
                distance_metric="cosine",
                refresh_database=False,
                silent=True,
                datastore_format="npz",
            )

        def ours(path, gallery_org=gallery_org):
            image = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26)
            for face in analyzer.analyze(image):
                search.gallery_candidates(
                    organization_id=gallery_org.pk, model_name="Dlib", embedding=face.embedding, limit=3
                )

        timings = {}
        with tenant_context(gallery_org.pk):
            for label, run in (("deepface_find", deepface_find), ("service_pipeline", ours)):
                run(probe_files[0])  # warm-up: models loaded, files cached
                started = time.perf_counter()
                for path in probe_files:
                    run(path)
                timings[label] = (time.perf_counter() - started) / len(probe_files)
        results.append(
            {
                "gallery": size,
                "probes": len(probe_files),
                "deepface_find_s": timings["deepface_find"],
                "service_s": timings["service_pipeline"],
                "speedup": timings["deepface_find"] / timings["service_pipeline"],
            }
        )
        print(f"  find {size}: {results[-1]}", flush=True)
    return results
