"""Accuracy the way the field measures it, on any folder of labelled photos.

- Verification, LFW View-2 protocol: 10-fold accuracy, the threshold chosen on nine
  folds and tested on the tenth; TAR at a fixed FAR.
- Open-set identification, NIST FRVT 1:N style: the first K photos of every person
  who has more than K are enrolled; their other photos are mated probes; every photo
  of the people not enrolled is a non-mated probe (a stranger). FNIR at a stated FPIR,
  the DET curve, closed-set rank-1, and the product's own operating point.

Scores are cosine distances computed in NumPy; decisions use the service's rule
(match.decide: threshold and margin). Pure: no Django, no database.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from apps.recognition.pipeline import calibration
from apps.recognition.pipeline.calibration import normalized
from apps.recognition.pipeline.datasets import Photo

# centroid: the person's template, the normalized mean of their photos (the service's).
STRATEGIES = ("centroid", "nearest", "knn2")
FPIR_POINTS = (0.01, 0.001)


def pick_face(faces: list, image_size: tuple[int, int] | None, rule: str) -> int | None:
    """Which detected face is the labelled one: `largest`, or `central` (LFW labels the
    face nearest the centre; others may be visible at the edges)."""
    if not faces:
        return None
    if rule == "largest" or image_size is None:
        return max(range(len(faces)), key=lambda i: faces[i].box.w * faces[i].box.h)
    width, height = image_size

    def off_centre(i):
        box = faces[i].box
        return (box.x + box.w / 2 - width / 2) ** 2 + (box.y + box.h / 2 - height / 2) ** 2

    return min(range(len(faces)), key=off_centre)


# --- Verification ---------------------------------------------------------------------


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs (midpoint between scores)."""
    finite = np.sort(np.unique(distances[np.isfinite(distances)]))
    if not len(finite):
        return 0.0
    candidates = np.concatenate([[finite[0] - 1e-6], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1e-6]])
    accuracy = [((distances <= t) == same).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def verification_10fold(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Threshold chosen on the other folds, accuracy on each fold. A pair whose photo had
    no face has distance inf: it is called 'different', right or wrong."""
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(distances[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(float(((distances[test] <= threshold) == same[test]).mean()))
    return {
        "accuracy": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "fold_thresholds": thresholds,
    }


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the loosest threshold whose false-accept rate is at most `far`."""
    impostor = np.sort(distances[~same])
    allowed = int(np.floor(far * len(impostor)))  # impostor pairs that may be accepted
    threshold = float(impostor[allowed] - 1e-9) if allowed < len(impostor) else float("inf")
    return float((distances[same] <= threshold).mean()), threshold


# --- Open-set identification ----------------------------------------------------------


@dataclass
class OpenSet:
    """A gallery and its probes, as embeddings."""

    gallery: np.ndarray  # (G, d), normalized
    owners: np.ndarray  # (G,) person index of each gallery row
    people: list[str]  # person index -> identity
    mated: np.ndarray  # (P, d); rows of NaN for probes without a face
    mates: np.ndarray  # (P,) person index of each mated probe
    nonmated: np.ndarray  # (Q, d); NaN rows likewise
    nonmated_identities: list[str] = field(default_factory=list)


def by_identity(photos: list[Photo]) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for photo in photos:
        grouped.setdefault(photo.identity, []).append(photo.path)
    return grouped


def split_open_set(
    embeddings: dict[Path, np.ndarray | None],
    photos: list[Photo],
    *,
    enroll_per_identity: int,
    people=None,
    distractors=(),
) -> OpenSet:
    """`embeddings` maps each photo to its labelled face's embedding, or None when no
    face was found. The first K photos of each person with more than K are enrolled
    (those without a face are skipped, as enrollment would reject them); everyone
    else's photos are strangers. `people` restricts who may be enrolled;
    `distractors` are enrolled with all their photos and give no probes (they make
    a gallery larger than the people with probes)."""
    grouped = by_identity(photos)
    k = enroll_per_identity
    distractors = set(distractors)
    enrolled = [
        i for i, paths in grouped.items() if (len(paths) > k and (people is None or i in people)) or i in distractors
    ]
    dims = next(len(v) for v in embeddings.values() if v is not None)
    missing = np.full(dims, np.nan, dtype=np.float32)

    def vector(path):
        value = embeddings.get(path)
        return missing if value is None else value

    gallery, owners, mated, mates = [], [], [], []
    for index, identity in enumerate(enrolled):
        paths = grouped[identity]
        for path in paths[:k]:
            if embeddings.get(path) is not None:
                gallery.append(embeddings[path])
                owners.append(index)
        for path in paths[k:]:
            mated.append(vector(path))
            mates.append(index)
    enrolled_set = set(enrolled)
    strangers = [(i, p) for i, paths in grouped.items() if i not in enrolled_set for p in paths]
    return OpenSet(
        gallery=normalized(np.stack(gallery)),
        owners=np.asarray(owners),
        people=enrolled,
        mated=normalized(np.stack(mated)) if mated else np.zeros((0, dims), np.float32),
        mates=np.asarray(mates, dtype=int),
        nonmated=normalized(np.stack([vector(p) for _, p in strangers])) if strangers else np.zeros((0, dims)),
        nonmated_identities=[i for i, _ in strangers],
    )


def person_scores(probes: np.ndarray, gallery: np.ndarray, owners: np.ndarray, people: int, strategy: str):
    """(P, people) distance from each probe to each person: to their nearest photo, to the
    normalized mean of their photos (centroid), or the mean of their two nearest (knn2).
    People without a photo are infinitely far; probes of NaN stay NaN."""
    scores = np.full((len(probes), people), np.inf, dtype=np.float32)
    if not len(probes) or not len(gallery):
        return scores
    if strategy == "centroid":
        centroids = np.zeros((people, gallery.shape[1]), dtype=np.float32)
        np.add.at(centroids, owners, gallery)
        present = np.bincount(owners, minlength=people) > 0
        scores[:, present] = 1.0 - probes @ normalized(centroids[present]).T
        return scores
    order = np.argsort(owners, kind="stable")
    owners_sorted = owners[order]
    distances = 1.0 - probes @ gallery[order].T
    starts = np.flatnonzero(np.r_[True, owners_sorted[1:] != owners_sorted[:-1]])
    persons = owners_sorted[starts]
    if strategy == "nearest":
        scores[:, persons] = np.minimum.reduceat(distances, starts, axis=1)
    elif strategy == "knn2":
        ends = np.r_[starts[1:], len(owners_sorted)]
        for person, start, end in zip(persons, starts, ends, strict=True):
            block = np.sort(distances[:, start:end], axis=1)
            scores[:, person] = block[:, :2].mean(axis=1)
    else:
        raise ValueError(f"Unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    return scores


@dataclass(frozen=True)
class Ranked:
    """Each probe's best and second-best person and their distances (inf when absent)."""

    top: np.ndarray
    d1: np.ndarray
    d2: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> "Ranked":
        scores = np.where(np.isnan(scores), np.inf, scores)
        if scores.shape[1] < 2:
            top = np.zeros(len(scores), dtype=int)
            return cls(
                top, scores[:, 0] if scores.shape[1] else np.full(len(scores), np.inf), np.full(len(scores), np.inf)
            )
        best_two = np.argpartition(scores, 1, axis=1)[:, :2]
        pair = np.take_along_axis(scores, best_two, axis=1)
        first = np.argmin(pair, axis=1)
        top = best_two[np.arange(len(scores)), first]
        return cls(top, pair.min(axis=1), pair.max(axis=1))

    def accepted(self, threshold: float, margin: float) -> np.ndarray:
        """match.decide, vectorized: within the threshold and clear of the runner-up."""
        with np.errstate(invalid="ignore"):  # inf - inf: a probe without a face, never accepted
            return (self.d1 <= threshold) & (self.d2 - self.d1 >= margin * threshold)


def operating_point(mated: Ranked, mates: np.ndarray, nonmated: Ranked, threshold: float, margin: float) -> dict:
    accepted = mated.accepted(threshold, margin)
    right = mated.top == mates
    return {
        "mated_recognized": float((accepted & right).mean()) if len(mates) else float("nan"),
        "mated_misidentified": float((accepted & ~right).mean()) if len(mates) else float("nan"),
        "mated_called_stranger": float((~accepted).mean()) if len(mates) else float("nan"),
        "strangers_accepted": float(nonmated.accepted(threshold, margin).mean()) if len(nonmated.d1) else float("nan"),
    }


def det_curve(mated: Ranked, mates: np.ndarray, nonmated: Ranked, margin: float = 0.0, points: int = 400):
    """(thresholds, FPIR, FNIR) over a sweep of thresholds. FNIR counts a mated probe as
    missed unless its mate is first and accepted; FPIR is the share of non-mated probes
    accepted as anyone."""
    finite = np.concatenate([mated.d1[np.isfinite(mated.d1)], nonmated.d1[np.isfinite(nonmated.d1)]])
    thresholds = np.unique(np.quantile(finite, np.linspace(0, 1, points))) if len(finite) else np.zeros(1)
    right = mated.top == mates
    fpir = np.array([nonmated.accepted(t, margin).mean() if len(nonmated.d1) else 0.0 for t in thresholds])
    fnir = np.array([1.0 - (mated.accepted(t, margin) & right).mean() if len(mates) else 0.0 for t in thresholds])
    return thresholds, fpir, fnir


def fnir_at_fpir(mated: Ranked, mates: np.ndarray, nonmated: Ranked, fpir: float, margin: float = 0.0):
    """(FNIR, threshold) at the loosest threshold that accepts at most `fpir` of the
    strangers. With no margin the threshold is exact: just under the non-mated score
    that would be one too many."""
    if margin == 0.0:
        scores = np.sort(nonmated.d1)
        allowed = int(np.floor(fpir * len(scores)))
        threshold = float(scores[allowed] - 1e-7) if allowed < len(scores) else float("inf")
    else:  # with a margin FPIR is not monotone in the threshold: the best one within the target
        thresholds, rates, misses = det_curve(mated, mates, nonmated, margin, points=2000)
        within = np.flatnonzero(rates <= fpir)
        threshold = float(thresholds[within[np.argmin(misses[within])]]) if len(within) else 0.0
    right = mated.top == mates
    return float(1.0 - (mated.accepted(threshold, margin) & right).mean()), threshold


def rank1(mated: Ranked, mates: np.ndarray) -> float:
    """Closed-set rank-1: the mate is the nearest person (probes without a face miss)."""
    return float(((mated.top == mates) & np.isfinite(mated.d1)).mean()) if len(mates) else float("nan")


def product_threshold(
    open_set: OpenSet, *, target_fpir: float, reference, margin: float
) -> calibration.GalleryCalibration:
    """The threshold the service would choose for this gallery: from its enrolled photos
    only (calibration.calibrate_gallery), never from the probes."""
    return calibration.calibrate_gallery(
        open_set.gallery, open_set.owners, target_fpir=target_fpir, reference=reference, margin=margin
    )


def measure_reference(embeddings: dict, photos: list[Photo], *, source: str, ks=(1, 3)):
    """A model's reference distances (calibration.ScoreReference) on these photos: for
    templates of K photos (the first K of everyone with more than K), every face of
    everyone else against them, and the enrolled people's other photos against
    their own."""
    present = [p for p in photos if embeddings.get(p.path) is not None]
    probes = np.stack([embeddings[p.path] for p in present])
    probe_owners = np.array([p.identity for p in present])
    impostor, misses = {}, {}
    for k in ks:
        split = split_open_set(embeddings, photos, enroll_per_identity=k)
        centroids, people = calibration.templates(split.gallery, split.owners)
        names = np.array(split.people)[people]
        impostor[k] = calibration.impostor_distances(probes, probe_owners, centroids, names, keep=2_000_000)
        scores = person_scores(split.mated, split.gallery, split.owners, len(split.people), "centroid")
        mate = scores[np.arange(len(split.mates)), split.mates]
        misses[k] = np.where(np.isnan(mate), np.inf, mate)
    return calibration.reference_from(impostor, misses, source=source)


def rank_open_set(open_set: OpenSet, strategy: str) -> tuple[Ranked, Ranked]:
    people = len(open_set.people)
    mated = Ranked.of(person_scores(open_set.mated, open_set.gallery, open_set.owners, people, strategy))
    nonmated = Ranked.of(person_scores(open_set.nonmated, open_set.gallery, open_set.owners, people, strategy))
    return mated, nonmated


def identification(
    open_set: OpenSet, *, strategy: str, margin: float, target_fpir: float, reference, threshold: float | None = None
) -> dict:
    """The FRVT figures of one gallery, and the product's operating point on it (its
    threshold from the gallery's photos, unless one is given)."""
    mated, nonmated = rank_open_set(open_set, strategy)
    calibrated = (
        product_threshold(open_set, target_fpir=target_fpir, reference=reference, margin=margin) if reference else None
    )
    if threshold is None:
        if calibrated is None:
            raise ValueError("No reference distances for this model: give a threshold.")
        threshold = calibrated.threshold
    figures = {
        "gallery": len(open_set.people),
        "gallery_photos": len(open_set.gallery),
        "mated_probes": len(open_set.mates),
        "nonmated_probes": len(open_set.nonmated),
        "rank1_closed_set": rank1(mated, open_set.mates),
    }
    for fpir in FPIR_POINTS:
        figures[f"fnir_at_fpir_{fpir:g}"], figures[f"threshold_at_fpir_{fpir:g}"] = fnir_at_fpir(
            mated, open_set.mates, nonmated, fpir
        )
        if margin:
            figures[f"fnir_at_fpir_{fpir:g}_with_margin"], _ = fnir_at_fpir(
                mated, open_set.mates, nonmated, fpir, margin
            )
    figures.update(
        {
            "threshold": threshold,
            "threshold_source": "given" if calibrated is None or threshold != calibrated.threshold else "calibrated",
            "expected_fpir": calibrated.expected_fpir if calibrated else None,
            "expected_fnir": calibrated.expected_fnir if calibrated else None,
            **operating_point(mated, open_set.mates, nonmated, threshold, margin),
        }
    )
    return figures, (mated, nonmated)


def gallery_size_curve(
    embeddings: dict,
    photos: list[Photo],
    *,
    enroll_per_identity: int,
    sizes,
    strategy: str,
    margin: float,
    target_fpir: float,
    reference,
    threshold: float | None = None,
    seed: int = 0,
) -> list[dict]:
    """Strangers accepted (and enrolled people recognized) at the product's operating
    point for galleries of each size: people drawn at random, averaged over repeats
    (more for small galleries, whose figures vary more). A size beyond the people
    who have probes is reached with distractors, people enrolled with their only photos."""
    rng = np.random.default_rng(seed)
    grouped = by_identity(photos)
    with_face = {i: [p for p in paths if embeddings.get(p) is not None] for i, paths in grouped.items()}
    k = enroll_per_identity
    enrollable = sorted(i for i, paths in grouped.items() if len(paths) > k and with_face[i][:1])
    others = sorted(i for i, paths in grouped.items() if len(paths) <= k and with_face[i])
    rows = []
    for size in sizes:
        # Strangers come in clusters (one famous face has hundreds of photos), so a
        # small gallery's figure swings with who is in it: many draws.
        repeats = 200 if size <= 10 else 50 if size <= 100 else 1
        results = []
        for _ in range(repeats):
            if size <= len(enrollable):
                people, distractors = set(rng.choice(enrollable, size, replace=False)), ()
            else:
                extra = min(size - len(enrollable), len(others) // 2)  # keep half of them as strangers
                people, distractors = set(enrollable), set(rng.choice(others, extra, replace=False))
            split = split_open_set(embeddings, photos, enroll_per_identity=k, people=people, distractors=distractors)
            figures, _ = identification(
                split,
                strategy=strategy,
                margin=margin,
                target_fpir=target_fpir,
                reference=reference,
                threshold=threshold,
            )
            results.append(figures)
        rows.append(
            {
                "gallery": int(np.mean([r["gallery"] for r in results])),
                "repeats": repeats,
                "threshold": float(np.mean([r["threshold"] for r in results])),
                "strangers_accepted": float(np.mean([r["strangers_accepted"] for r in results])),
                "expected_fpir": float(np.mean([r["expected_fpir"] or 0 for r in results])),
                "mated_recognized": float(np.mean([r["mated_recognized"] for r in results])),
                "mated_misidentified": float(np.mean([r["mated_misidentified"] for r in results])),
                "fnir_at_fpir_0.01": float(np.mean([r["fnir_at_fpir_0.01"] for r in results])),
            }
        )
    return rows
