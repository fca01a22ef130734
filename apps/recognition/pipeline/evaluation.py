"""Accuracy of the pipeline on any folder of labelled photos: verification on pairs,
open-set identification, and strangers (identities left out of the gallery).

Uses the service's own analyzer and decision code (match.best_per_person, match.decide),
with exact distances in NumPy instead of pgvector."""

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.recognition.pipeline import match
from apps.recognition.pipeline.calibration import cosine_distances
from apps.recognition.pipeline.engine import FaceAnalyzer
from apps.recognition.pipeline.images import decode_image

STRATEGIES = ("nearest", "centroid", "knn2")


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str


def read_labels(labels_csv: Path) -> list[Photo]:
    folder = labels_csv.parent
    with open(labels_csv, newline="") as file:
        return [Photo(folder / row["file"], row["identity"]) for row in csv.DictReader(file)]


def read_pairs(pairs_csv: Path) -> list[tuple[Path, Path, bool]]:
    folder = pairs_csv.parent
    with open(pairs_csv, newline="") as file:
        return [
            (folder / row["file_x"], folder / row["file_y"], row["Decision"].strip().lower() in {"yes", "1", "true"})
            for row in csv.DictReader(file)
        ]


def embed_largest_faces(analyzer: FaceAnalyzer, paths, max_pixels: int = 100_000_000) -> dict[Path, np.ndarray]:
    """The embedding of each photo's largest face; photos without a face are left out."""
    embeddings = {}
    for path in sorted(set(paths)):
        image = decode_image(path.read_bytes(), max_bytes=1 << 31, max_pixels=max_pixels)
        faces = analyzer.detect(image)
        if faces:
            face = max(faces, key=lambda f: f.box.w * f.box.h)
            embeddings[path] = analyzer.embed(image, [face])[0]
    return embeddings


def pair_accuracy(embeddings: dict, pairs, threshold: float) -> float:
    """A pair whose photo has no detectable face counts as a wrong answer."""
    correct = 0
    for x, y, same in pairs:
        if x in embeddings and y in embeddings:
            distance = float(cosine_distances(embeddings[x][None], embeddings[y][None])[0, 0])
            correct += (distance <= threshold) == same
    return correct / len(pairs) if pairs else float("nan")


def _rank(probe: np.ndarray, gallery: dict[str, np.ndarray], strategy: str, limit: int = 3) -> list[match.Candidate]:
    """People ranked for one probe; identities stand in for person ids."""
    ids = list(gallery)
    if strategy == "nearest":
        neighbours = [
            (index, float(d))
            for index, vectors in enumerate(gallery.values())
            for d in cosine_distances(probe[None], vectors)[0]
        ]
        ranked = match.best_per_person(neighbours, limit)
    else:
        scores = []
        for index, vectors in enumerate(gallery.values()):
            distances = np.sort(cosine_distances(probe[None], vectors)[0])
            if strategy == "centroid":
                centroid = vectors.mean(axis=0, keepdims=True)
                score = float(cosine_distances(probe[None], centroid)[0, 0])
            else:  # knn2: mean distance to the person's two nearest photos
                score = float(distances[:2].mean())
            scores.append((index, score))
        ranked = match.best_per_person(scores, limit)
    return [match.Candidate(ids[c.person_id], c.distance) for c in ranked]  # type: ignore[arg-type]


def open_set(
    embeddings: dict, photos: list[Photo], *, enroll_per_identity: int, threshold: float, margin: float, strategy: str
) -> dict:
    """Enroll the first K photos of each identity and probe with the rest (rank-1);
    then, one identity at a time, leave it out and probe with all its photos (strangers)."""
    by_identity: dict[str, list[Path]] = defaultdict(list)
    for photo in photos:
        if photo.path in embeddings:
            by_identity[photo.identity].append(photo.path)
    gallery = {
        identity: np.stack([embeddings[p] for p in paths[:enroll_per_identity]])
        for identity, paths in by_identity.items()
        if paths[:enroll_per_identity]
    }
    probes = [(identity, p) for identity, paths in by_identity.items() for p in paths[enroll_per_identity:]]
    recognized = 0
    for identity, path in probes:
        decision = match.decide(_rank(embeddings[path], gallery, strategy), threshold, margin)
        recognized += decision is not None and decision.person_id == identity
    stranger_probes = stranger_accepts = 0
    for identity, paths in by_identity.items():
        others = {other: vectors for other, vectors in gallery.items() if other != identity}
        for path in paths:
            stranger_probes += 1
            stranger_accepts += match.decide(_rank(embeddings[path], others, strategy), threshold, margin) is not None
    return {
        "rank1": recognized / len(probes) if probes else float("nan"),
        "stranger_accept_rate": stranger_accepts / stranger_probes if stranger_probes else float("nan"),
        "identification_probes": len(probes),
        "stranger_probes": stranger_probes,
        "identities": len(gallery),
        "photos_without_face": len(photos) - sum(len(p) for p in by_identity.values()),
    }
