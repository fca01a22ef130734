"""A threshold that keeps a promise at the organization's gallery size.

An organization states the share of strangers it accepts being called someone (the
target FPIR). Each person is matched by their template, the normalized mean of their
enrolled photos' embeddings, and a stranger is compared with every template: what
matters is the lower tail of the impostor distances. If a stranger's face is at most
`t` from one other person's template with probability F(t), then with N people
enrolled it is accepted as the nearest of them with probability about

    FPIR(t) = 1 - (1 - F(t))^N

(with the margin rule, the nearest must also be clear of the second: the order
statistics of N draws from F give that too, fpir_expected). The threshold for a
target is where FPIR(t) meets it: the larger the gallery, the deeper in F's tail
(1 % at 1,000 people is F's 1e-5 quantile).

F's tail comes from the gallery itself (every enrolled photo against everyone else's
template, as a stranger would be) as deep as the gallery's pairs can tell, and below
that from the model's reference tail (catalog, measured on lfw-dev by `evaluate_faces
--reference`), shifted to meet the gallery's own tail. A small gallery uses the
reference alone.
"""

from dataclasses import dataclass, field

import numpy as np

# The gallery's own tail is read only where at least this many impostor pairs lie below.
# With 100, the shift of the reference was too noisy for small galleries: random
# 100-people galleries of lfw-dev (MobileFaceNet, one photo each) accepted 1.34 % of
# strangers for a 1 % target; with 1,000, 1.10 % (README, "Models compared").
MIN_TAIL_PAIRS = 1_000
# Impostor distances kept from a gallery (its lowest); the rest only count.
KEPT_DISTANCES = 200_000
# Galleries with more photos are calibrated on a (seeded) sample of this many.
MAX_CALIBRATION_PHOTOS = 20_000
# People counts for which the expected error rates are reported (the growth curve).
GROWTH_PEOPLE = (10, 100, 1_000, 10_000)


@dataclass(frozen=True)
class ScoreReference:
    """A model's distances on lfw-dev, kept in code as a few numbers, per number of
    photos K in a person's template.

    `impostor`: K -> (p, distance) — a share p of (face, template of someone else)
    pairs are at most `distance` apart. `misses`: K -> (distance, FNIR) — the share of
    an enrolled person's new photos farther than `distance` from their template."""

    impostor: dict[int, tuple[tuple[float, float], ...]]
    misses: dict[int, tuple[tuple[float, float], ...]]
    source: str = ""

    @staticmethod
    def _nearest(counts, photos_per_person: float) -> int:
        # A tie goes to the smaller K, the cautious one.
        return min(sorted(counts), key=lambda c: abs(c - photos_per_person))

    def impostor_points(self, photos_per_person: float) -> tuple[tuple[float, float], ...]:
        return self.impostor[self._nearest(self.impostor, photos_per_person)]

    def expected_fnir(self, threshold: float, photos_per_person: float) -> float | None:
        if not self.misses:
            return None
        distances, rates = zip(*self.misses[self._nearest(self.misses, photos_per_person)], strict=True)
        return float(np.interp(threshold, distances, rates))


def normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 - normalized(a) @ normalized(b).T


def templates(vectors: np.ndarray, owners) -> tuple[np.ndarray, np.ndarray]:
    """(each person's template: the normalized mean of their normalized photos; the
    people, in the same order)."""
    owners = np.asarray(owners)
    people, index = np.unique(owners, return_inverse=True)
    sums = np.zeros((len(people), vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, index, normalized(vectors))
    return normalized(sums), people


def impostor_distances(
    probes: np.ndarray, probe_owners, templates_: np.ndarray, template_owners, keep: int = KEPT_DISTANCES
) -> tuple[np.ndarray, int]:
    """(the lowest `keep` distances from each probe to the templates of other people,
    sorted; how many such pairs there are). Computed in blocks, so that a large
    gallery fits in memory."""
    probes, probe_owners = normalized(probes), np.asarray(probe_owners)
    template_owners = np.asarray(template_owners)
    lowest, pairs = np.zeros(0, dtype=np.float32), 0
    block = max(1, 4_000_000 // max(1, len(templates_)))
    for start in range(0, len(probes), block):
        rows = slice(start, start + block)
        distances = 1.0 - probes[rows] @ templates_.T
        values = distances[probe_owners[rows][:, None] != template_owners[None, :]]
        pairs += len(values)
        lowest = np.concatenate([lowest, values])
        if len(lowest) > keep:
            lowest = np.partition(lowest, keep)[:keep]
    return np.sort(lowest), pairs


def gallery_impostor_distances(vectors: np.ndarray, owners) -> tuple[np.ndarray, int]:
    """Every enrolled photo searched against everyone else's template, as a stranger
    would be."""
    centroids, people = templates(vectors, owners)
    return impostor_distances(vectors, owners, centroids, people)


def correction_distances(vectors: np.ndarray, owners, corrected, corrected_owners) -> np.ndarray:
    """Impostor distances that users found: each face corrected away from a person, to
    that person's template (the hardest impostors there are)."""
    if not len(corrected) or not len(vectors):
        return np.zeros(0, dtype=np.float32)
    centroids, people = templates(vectors, owners)
    distances = 1.0 - normalized(np.stack(corrected)) @ centroids.T
    same = np.asarray(corrected_owners)[:, None] == people[None, :]
    nearest = np.where(same, distances, np.inf).min(axis=1)
    return nearest[np.isfinite(nearest)].astype(np.float32)


class ImpostorTail:
    """F (the per-photo impostor distance CDF) in its lower tail, and its inverse."""

    GRID = np.logspace(-10, np.log10(0.5), 400)

    def __init__(
        self,
        reference: ScoreReference,
        lowest: np.ndarray | None = None,
        pairs: int = 0,
        photos_per_person: float = 1.0,
    ):
        self.reference = reference
        self.lowest = np.zeros(0) if lowest is None else np.asarray(lowest, dtype=np.float64)
        self.pairs = pairs
        points = reference.impostor_points(photos_per_person)
        ref_p, ref_d = (np.array(v, dtype=np.float64) for v in zip(*points, strict=True))
        self._ref_log_p, self._ref_d = np.log10(ref_p), ref_d
        # The gallery's own tail is trusted from this probability up.
        self.p_gallery = MIN_TAIL_PAIRS / pairs if pairs else float("inf")
        # Too few pairs to read even the reference's shallowest point: the reference alone.
        self.uses_gallery = bool(len(self.lowest)) and self.p_gallery <= ref_p.max()
        self.shift = 0.0
        if self.uses_gallery:
            self.shift = self._gallery_quantile(self.p_gallery) - self._reference_quantile(self.p_gallery)
        self._grid_d = np.maximum.accumulate(np.array([self.quantile(p) for p in self.GRID]))

    @property
    def source(self) -> str:
        return "gallery and reference" if self.uses_gallery else "reference"

    def _reference_quantile(self, p: float) -> float:
        log_p = np.log10(p)
        x, y = self._ref_log_p, self._ref_d
        if log_p < x[0]:  # deeper than measured: extend the first segment's slope
            return float(y[0] + (log_p - x[0]) * (y[1] - y[0]) / (x[1] - x[0]))
        return float(np.interp(log_p, x, y))

    def _gallery_quantile(self, p: float) -> float:
        index = min(len(self.lowest) - 1, int(np.floor(p * self.pairs)))
        return float(self.lowest[index])

    def quantile(self, p: float) -> float:
        """The distance below which a share p of impostor pairs lie."""
        if self.uses_gallery and p >= self.p_gallery and np.floor(p * self.pairs) < len(self.lowest):
            return max(0.0, self._gallery_quantile(p))
        return max(0.0, self._reference_quantile(p) + self.shift)

    def cdf(self, distance):
        """F at a distance, or at an array of them."""
        value = 10 ** np.interp(distance, self._grid_d, np.log10(self.GRID), left=-10, right=np.log10(0.5))
        return float(value) if np.ndim(value) == 0 else value


def fpir_expected(tail: ImpostorTail, threshold: float, people: int, margin: float = 0.0) -> float:
    """The share of strangers accepted with `people` templates: the nearest impostor
    within the threshold and, with a margin, the second at least margin x threshold
    further. With N independent draws from F,

        P = integral over x <= t of N F'(x) (1 - F(x + margin t))^(N - 1) dx,

    which is 1 - (1 - F(t))^N without a margin."""
    people = max(1, people)
    if margin <= 0:
        return float(1.0 - (1.0 - tail.cdf(threshold)) ** people)
    x = np.linspace(0.0, threshold, 801)
    middle = (x[:-1] + x[1:]) / 2
    clear = (1.0 - tail.cdf(middle + margin * threshold)) ** (people - 1)
    return float(np.sum(people * np.diff(tail.cdf(x)) * clear))


def threshold_for_fpir(tail: ImpostorTail, target_fpir: float, people: int, margin: float = 0.0) -> float:
    """The loosest threshold whose expected FPIR stays within the target. A margin lets
    it loosen, but only so far: past a point the margin (a share of the threshold)
    rejects ever more faces and FPIR falls again, so the search climbs from the
    plain threshold and stops where FPIR first exceeds the target."""
    people = max(1, people)
    plain = tail.quantile(1.0 - (1.0 - target_fpir) ** (1.0 / people))
    if margin <= 0:
        return plain
    best = plain
    for threshold in plain * np.linspace(1.0, 1.5, 101)[1:]:
        if fpir_expected(tail, threshold, people, margin) > target_fpir:
            break
        best = threshold
    return float(best)


@dataclass(frozen=True)
class GalleryCalibration:
    threshold: float
    target_fpir: float
    people: int
    photos: int
    impostor_pairs: int
    source: str  # "reference" or "gallery and reference"
    expected_fpir: float
    expected_fnir: float | None
    margin: float = 0.0
    # One row per gallery size: {"people", "photos", "fpir_at_threshold", "threshold_for_target", "fnir"}.
    growth: list[dict] = field(default_factory=list)
    lowest_impostor: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    tail: ImpostorTail | None = field(default=None, repr=False)

    def summary(self) -> dict:
        return {
            "threshold": self.threshold,
            "target_fpir": self.target_fpir,
            "people": self.people,
            "photos": self.photos,
            "impostor_pairs": self.impostor_pairs,
            "source": self.source,
            "expected_fpir": self.expected_fpir,
            "expected_fnir": self.expected_fnir,
            "margin": self.margin,
            "growth": self.growth,
        }


def calibrate_gallery(
    vectors: np.ndarray,
    owners,
    *,
    target_fpir: float,
    reference: ScoreReference,
    margin: float = 0.0,
    corrected: np.ndarray | None = None,
) -> GalleryCalibration:
    """The threshold at which about `target_fpir` of strangers would be accepted by this
    gallery, matched by templates with this margin rule. `corrected`: distances from
    faces users corrected away from a person to that person's template — impostors
    the gallery alone would not show."""
    if not 0 < target_fpir < 0.5:
        raise ValueError("The target FPIR must be between 0 and 0.5.")
    owners = np.asarray(owners)
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(owners), -1)
    photos, people = len(owners), len(set(owners.tolist()))
    per_person = photos / people if people else 1.0
    lowest, pairs = np.zeros(0, dtype=np.float32), 0
    if people > 1:
        centroids, template_owners = templates(vectors, owners)
        probes, probe_owners = vectors, owners
        if photos > MAX_CALIBRATION_PHOTOS:
            chosen = np.random.default_rng(0).choice(photos, MAX_CALIBRATION_PHOTOS, replace=False)
            probes, probe_owners = vectors[chosen], owners[chosen]
        lowest, pairs = impostor_distances(probes, probe_owners, centroids, template_owners)
    if corrected is not None and len(corrected):
        lowest = np.sort(np.concatenate([lowest, np.asarray(corrected, dtype=np.float32)]))
        pairs += len(corrected)
    tail = ImpostorTail(reference, lowest, pairs, photos_per_person=per_person)
    threshold = threshold_for_fpir(tail, target_fpir, people, margin)
    growth = []
    for size in sorted({people, *GROWTH_PEOPLE} - {0}):
        needed = threshold_for_fpir(tail, target_fpir, size, margin)
        growth.append(
            {
                "people": size,
                "photos": round(size * per_person),
                "fpir_at_threshold": fpir_expected(tail, threshold, size, margin),
                "threshold_for_target": needed,
                "fnir": reference.expected_fnir(needed, per_person),
            }
        )
    return GalleryCalibration(
        threshold=threshold,
        target_fpir=target_fpir,
        people=people,
        photos=photos,
        impostor_pairs=pairs,
        source=tail.source,
        expected_fpir=fpir_expected(tail, threshold, people, margin),
        expected_fnir=reference.expected_fnir(threshold, per_person),
        margin=margin,
        growth=growth,
        lowest_impostor=lowest,
        tail=tail,
    )


def plot_png(result: GalleryCalibration, title: str) -> bytes:
    """Left: the gallery's lowest impostor distances and the threshold. Right: the DET
    curve to expect (FNIR against FPIR, log scales) at today's size and after growth."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    if len(result.lowest_impostor):
        shown = result.lowest_impostor[: max(50, len(result.lowest_impostor) // 10)]
        left.hist(shown, bins=40, color="tab:red", alpha=0.6, label=f"closest impostor pairs ({len(shown)})")
    left.axvline(result.threshold, color="black", linestyle="--", label=f"threshold {result.threshold:.4f}")
    left.set_xlabel("cosine distance")
    left.set_ylabel("pairs")
    left.set_title(f"{result.people} people, {result.photos} photos ({result.source})", fontsize=9)
    left.legend(fontsize=8)

    tail, reference = result.tail, result.tail.reference if result.tail else None
    per_person = result.photos / result.people if result.people else 1.0
    if tail is not None and reference.misses:
        grid = np.linspace(0.3 * result.threshold, 2.0 * result.threshold, 200)
        for row in result.growth:
            if row["people"] not in {result.people, 10 * result.people, 100 * result.people} and row["people"] not in (
                1_000,
                10_000,
            ):
                continue
            fpir = np.array([fpir_expected(tail, t, row["people"], result.margin) for t in grid])
            fnir = np.array([reference.expected_fnir(t, per_person) for t in grid])
            # Past its peak the margin rejects ever more faces: no threshold there is worth drawing.
            peak = int(np.argmax(fpir)) + 1
            right.plot(fpir[:peak], fnir[:peak], label=f"{row['people']:,} people")
        right.plot([result.expected_fpir], [result.expected_fnir or 0], "ko", label=f"today at {result.threshold:.4f}")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlim(1e-4, 1)
        right.grid(True, which="both", alpha=0.3)
        right.legend(fontsize=8)
    right.set_xlabel("FPIR (strangers accepted)")
    right.set_ylabel("FNIR (enrolled people missed)")
    right.set_title(f"expected, target FPIR {result.target_fpir:g}", fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def reference_from(
    impostor: dict[int, tuple[np.ndarray, int]], misses: dict[int, np.ndarray], *, source: str
) -> ScoreReference:
    """A model's reference from measured distances, per template size K: `impostor`
    K -> (the lowest impostor distances, how many pairs); `misses` K -> mated probes'
    distances to their own template (inf for probes without a face)."""
    tails = {}
    for k, (lowest, pairs) in impostor.items():
        points = []
        for p in (1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1):
            index = int(np.floor(p * pairs))
            if 3 <= index < len(lowest):  # at least a few pairs below
                points.append((p, round(float(lowest[index]), 5)))
        tails[k] = tuple(points)
    curves = {}
    for k, distances in misses.items():
        distances = np.asarray(distances)
        # Dense where thresholds are used: down to a miss rate of 1 %.
        levels = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
        grid = np.quantile(distances[np.isfinite(distances)], levels)
        curves[k] = tuple((round(float(t), 5), round(float((distances > t).mean()), 5)) for t in grid)
    return ScoreReference(impostor=tails, misses=curves, source=source)
