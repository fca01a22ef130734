"""Every face of a folder of photos, analyzed once per (model, detector, alignment) and
kept on disk, keyed by the photo's content: evaluate_faces takes minutes the first
time on LFW-sized folders and seconds after that.

The cache is one SQLite file (standard library, safe to interrupt: what was stored
stays). Photos are analyzed by a pool of processes, each with its own FaceAnalyzer,
behind a progress bar.
"""

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from apps.recognition.pipeline.faces import Box


@dataclass(frozen=True)
class CachedFace:
    box: Box
    confidence: float
    quality: dict  # quality.Quality.as_dict()
    embedding: np.ndarray  # float32
    mirrored: np.ndarray | None  # the embedding of the face flipped left to right, if asked


def photo_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FaceCache:
    def __init__(self, path: Path, key: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS faces (analyzer TEXT, digest TEXT, faces TEXT, vectors BLOB, "
            "PRIMARY KEY (analyzer, digest))"
        )

    def get_many(self, digests: Iterable[str]) -> dict[str, list[CachedFace]]:
        found = {}
        wanted = list(digests)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT digest, faces, vectors FROM faces WHERE analyzer = ? AND digest IN ({marks})",
                [self.key, *chunk],
            )
            for digest, faces, vectors in rows:
                found[digest] = _unpack(faces, vectors)
        return found

    def put(self, digest: str, faces: list[CachedFace]) -> None:
        self._db.execute("INSERT OR REPLACE INTO faces VALUES (?, ?, ?, ?)", [self.key, digest, *_pack(faces)])

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()


def _pack(faces: list[CachedFace]) -> tuple[str, bytes]:
    meta = [{"box": f.box.as_dict(), "confidence": f.confidence, "quality": f.quality} for f in faces]
    mirrored = bool(faces) and all(f.mirrored is not None for f in faces)
    vectors = [v for f in faces for v in ([f.embedding, f.mirrored] if mirrored else [f.embedding])]
    stacked = np.stack(vectors) if vectors else np.zeros(0)
    return json.dumps({"faces": meta, "mirrored": mirrored}), stacked.astype(np.float32).tobytes()


def _unpack(meta_json: str, blob: bytes) -> list[CachedFace]:
    meta = json.loads(meta_json)
    faces = meta["faces"]
    if not faces:
        return []
    per_face = 2 if meta["mirrored"] else 1
    vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(faces) * per_face, -1)
    return [
        CachedFace(
            box=Box(**face["box"]),
            confidence=face["confidence"],
            quality=face["quality"],
            embedding=vectors[i * per_face],
            mirrored=vectors[i * per_face + 1] if per_face == 2 else None,
        )
        for i, face in enumerate(faces)
    ]


# --- Analysis in a pool of processes ----------------------------------------------------

_analyzer = None
_face_only = None


def _start_worker(analyzer_options: dict, face_only: str | None = None) -> None:
    global _analyzer, _face_only
    # One thread per process: the pool already uses every core.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from apps.recognition.pipeline.engine import FaceAnalyzer

    _analyzer = FaceAnalyzer(**analyzer_options)
    _face_only = face_only


def _analyze_one(path: Path) -> tuple[Path, str, list[CachedFace] | None]:
    from apps.recognition.pipeline.evaluation import pick_face
    from apps.recognition.pipeline.images import ImageRejected, decode_image, face_only

    data = path.read_bytes()
    digest = photo_digest(data)
    try:
        image = decode_image(data, max_bytes=1 << 31, max_pixels=100_000_000)
    except ImageRejected:
        return path, digest, None
    if _face_only:
        # As an organization that keeps faces only stores the photo (the labelled face,
        # by the evaluation's rule, with room around it) and a model change embeds it
        # again: the face found nearest the kept picture's centre, alone.
        found = _analyzer.detect(image)
        if not found:
            return path, digest, []
        labelled = found[pick_face(found, (image.shape[1], image.shape[0]), _face_only)]
        image, _ = face_only(image, labelled.box)
        analyzed = _analyzer.analyze(image, views=True)
        if not analyzed:
            return path, digest, []
        analyzed = [analyzed[pick_face([a.face for a in analyzed], (image.shape[1], image.shape[0]), "central")]]
        return (
            path,
            digest,
            [CachedFace(a.face.box, a.face.confidence, a.quality.as_dict(), *a.views) for a in analyzed],
        )
    return (
        path,
        digest,
        [
            CachedFace(a.face.box, a.face.confidence, a.quality.as_dict(), *a.views)
            for a in _analyzer.analyze(image, views=True)
        ],
    )


def analyze_photos(
    paths: Iterable[Path],
    *,
    analyzer_options: dict,
    cache: FaceCache,
    workers: int | None = None,
    progress: bool = True,
    face_only: str | None = None,
) -> dict[Path, list[CachedFace]]:
    """Every face of every photo, each with its own and its mirror image's embedding
    (unreadable photos map to an empty list); with `face_only` (a pick_face rule), of
    the photo cut down to that face as images.face_only keeps it (the cache's key must
    say so)."""
    from tqdm import tqdm

    paths = sorted(set(paths))
    digests = {}
    for path in tqdm(paths, desc="reading photos", unit="photo", disable=not progress, leave=False):
        digests[path] = photo_digest(path.read_bytes())
    cached = cache.get_many(digests.values())
    # Entries made without the mirrored embedding do not count.
    cached = {d: faces for d, faces in cached.items() if all(f.mirrored is not None for f in faces)}
    result = {path: cached[digest] for path, digest in digests.items() if digest in cached}
    todo = [path for path in paths if path not in result]
    if todo:
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        with (
            get_context("spawn").Pool(workers, _start_worker, (analyzer_options, face_only)) as pool,
            tqdm(total=len(todo), desc=f"analyzing ({cache.key})", unit="photo", disable=not progress) as bar,
        ):
            for done, (path, digest, faces) in enumerate(pool.imap_unordered(_analyze_one, todo, chunksize=4), 1):
                result[path] = faces or []
                if faces is not None:
                    cache.put(digest, faces)
                if done % 200 == 0:
                    cache.commit()
                bar.update()
        cache.commit()
    return result
