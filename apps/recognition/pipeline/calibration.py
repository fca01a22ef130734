"""Thresholds from an organization's own photos: genuine distances (two photos of the
same person) against impostor distances (photos of two different people)."""

from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Calibration:
    threshold: float
    target_far: float
    genuine: np.ndarray
    impostor: np.ndarray
    far: float  # measured on these photos at the threshold
    frr: float | None  # None when no person has two photos

    def summary(self) -> dict:
        def stats(values: np.ndarray) -> dict:
            if not len(values):
                return {"count": 0}
            return {
                "count": int(len(values)),
                "min": float(values.min()),
                "mean": float(values.mean()),
                "max": float(values.max()),
                "std": float(values.std()),
            }

        return {
            "threshold": self.threshold,
            "target_far": self.target_far,
            "far": self.far,
            "frr": self.frr,
            "genuine": stats(self.genuine),
            "impostor": stats(self.impostor),
        }


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1.0 - a @ b.T


def distance_distributions(embeddings: np.ndarray, labels: list) -> tuple[np.ndarray, np.ndarray]:
    distances = cosine_distances(embeddings, embeddings)
    genuine, impostor = [], []
    for i, j in combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append(distances[i, j])
    return np.asarray(genuine, dtype=np.float64), np.asarray(impostor, dtype=np.float64)


def recommend_threshold(impostor: np.ndarray, target_far: float) -> float:
    """The threshold at which about `target_far` of impostor pairs would be accepted.

    A gallery gives a few hundred impostor pairs, too few to read a 0.1 % quantile off
    directly, so the tail is extrapolated from a normal fit of the impostor distances;
    the result is never above the observed quantile, so it errs toward calling a face
    a stranger.
    """
    if len(impostor) < 2:
        raise ValueError("Calibration needs photos of at least two different people.")
    fitted = float(impostor.mean() + NormalDist().inv_cdf(target_far) * impostor.std())
    observed = float(np.quantile(impostor, target_far))
    return max(0.0, min(fitted, observed))


def correction_distances(
    embeddings: np.ndarray, labels: list, corrected: np.ndarray, corrected_labels: list
) -> np.ndarray:
    """Impostor distances that users found: each corrected face to the nearest photo of
    the person it had wrongly been matched to (the hardest impostors there are)."""
    if not len(corrected):
        return np.zeros(0)
    distances = cosine_distances(corrected, embeddings)
    same = np.asarray(corrected_labels)[:, None] == np.asarray(labels)[None, :]
    nearest = np.where(same, distances, np.inf).min(axis=1)
    return nearest[np.isfinite(nearest)]


def calibrate(
    embeddings: np.ndarray,
    labels: list,
    target_far: float,
    corrected: np.ndarray | None = None,
    corrected_labels: list | None = None,
) -> Calibration:
    """`corrected` (with `corrected_labels`, the person each face is NOT) adds the
    faces of users' corrections to the impostor pairs."""
    genuine, impostor = distance_distributions(embeddings, labels)
    if corrected is not None and len(corrected):
        impostor = np.concatenate([impostor, correction_distances(embeddings, labels, corrected, corrected_labels)])
    threshold = recommend_threshold(impostor, target_far)
    return Calibration(
        threshold=threshold,
        target_far=target_far,
        genuine=genuine,
        impostor=impostor,
        far=float((impostor <= threshold).mean()),
        frr=float((genuine > threshold).mean()) if len(genuine) else None,
    )


def plot_png(result: Calibration, title: str) -> bytes:
    """Both distance distributions, and FAR / FRR as the threshold moves."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    top = max(result.impostor.max(), result.genuine.max() if len(result.genuine) else 0, result.threshold) * 1.1
    bins = np.linspace(0, top, 40)
    if len(result.genuine):
        left.hist(result.genuine, bins=bins, alpha=0.6, label=f"genuine ({len(result.genuine)})", color="tab:green")
    left.hist(result.impostor, bins=bins, alpha=0.6, label=f"impostor ({len(result.impostor)})", color="tab:red")
    left.axvline(result.threshold, color="black", linestyle="--", label=f"threshold {result.threshold:.3f}")
    left.set_xlabel("cosine distance")
    left.set_ylabel("pairs")
    left.legend()
    left.set_title("distances")

    grid = np.linspace(0, top, 200)
    right.plot(grid, [(result.impostor <= t).mean() for t in grid], label="FAR", color="tab:red")
    if len(result.genuine):
        right.plot(grid, [(result.genuine > t).mean() for t in grid], label="FRR", color="tab:green")
    right.axvline(result.threshold, color="black", linestyle="--")
    right.set_xlabel("threshold")
    right.set_ylabel("rate")
    right.legend()
    right.set_title(f"target FAR {result.target_far:g}")
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
