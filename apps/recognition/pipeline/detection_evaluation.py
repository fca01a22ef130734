"""How well a face detector does on a folder of group photos (datasets/groups).

Two kinds of truth, both read from the folder:
- `faces.csv`: how many human faces a person expects in each photo (a photo with 0,
  dogs.jpg, is a negative). A detector is credited with at most that many faces, so
  extra detections never make up for missed ones.
- `boxes.csv`: annotated face boxes for some photos (the PASCAL VOC ones, small faces).
  Detections are matched one to one to those boxes by IoU, which checks that what
  was found is where the faces are, not just how many.

Pure: no Django, no database, no model; the command feeds it the detections.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

BoxXYWH = tuple[int, int, int, int]  # x, y, width, height in pixels

DEFAULT_IOU = 0.4


@dataclass(frozen=True)
class GroupPhoto:
    file: str
    faces_expected: int
    counted_from: str
    notes: str
    # Empty when the photo has no annotated boxes (its count was made by eye).
    boxes: tuple[BoxXYWH, ...] = ()

    @property
    def annotated(self) -> bool:
        return bool(self.boxes)


def read_groups(folder: Path) -> list[GroupPhoto]:
    """Every photo of faces.csv, with its boxes from boxes.csv (optional file)."""
    folder = Path(folder)
    boxes = read_boxes(folder / "boxes.csv") if (folder / "boxes.csv").is_file() else {}
    with open(folder / "faces.csv", newline="") as file:
        photos = [
            GroupPhoto(
                file=row["file"],
                faces_expected=int(row["faces_expected"]),
                counted_from=row.get("counted_from") or "",
                notes=row.get("notes") or "",
                boxes=tuple(boxes.get(row["file"], ())),
            )
            for row in csv.DictReader(file)
        ]
    # A box for a photo faces.csv does not list would silently drop out of the figures.
    unknown = sorted(set(boxes) - {p.file for p in photos})
    if unknown:
        raise ValueError(f"boxes.csv has boxes for photos not in faces.csv: {', '.join(unknown)}")
    return photos


def read_boxes(boxes_csv: Path) -> dict[str, list[BoxXYWH]]:
    boxes: dict[str, list[BoxXYWH]] = {}
    with open(boxes_csv, newline="") as file:
        for row in csv.DictReader(file):
            boxes.setdefault(row["file"], []).append(tuple(int(row[k]) for k in ("x", "y", "w", "h")))
    return boxes


# --- Matching -------------------------------------------------------------------------


def iou(a: BoxXYWH, b: BoxXYWH) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when they only touch."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Match:
    detection: int  # index into the detections
    truth: int  # index into the annotated boxes
    iou: float


def match_boxes(detections: list[BoxXYWH], truths: list[BoxXYWH], threshold: float = DEFAULT_IOU) -> list[Match]:
    """One-to-one matches, the highest IoU first (as PASCAL VOC / COCO evaluation does).

    Highest-first rather than detection by detection: a loose box overlapping two faces
    must not take the face that a tighter box fits better and leave that one unmatched.
    Ties go to the lower indices, so that the result does not depend on sort stability.
    """
    candidates = [
        (overlap, d, t)
        for d, det in enumerate(detections)
        for t, truth in enumerate(truths)
        if (overlap := iou(det, truth)) >= threshold
    ]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_detections: set[int] = set()
    used_truths: set[int] = set()
    matches = []
    for overlap, d, t in candidates:
        if d in used_detections or t in used_truths:
            continue
        used_detections.add(d)
        used_truths.add(t)
        matches.append(Match(d, t, overlap))
    return matches


# --- Scores ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoScore:
    file: str
    expected: int
    found: int
    # Faces credited: at most the faces expected.
    counted: int
    # More detections than faces: the surplus are false detections (dogs.jpg: all of them).
    false_detections: int
    # None for photos without annotated boxes.
    annotated: int | None
    matched: int | None
    # Detections matching no annotated box. Informational only: VOC photos show people
    # in the background nobody boxed, so a right detection can land here.
    unmatched: int | None


def score_photo(photo: GroupPhoto, detections: list[BoxXYWH], threshold: float = DEFAULT_IOU) -> PhotoScore:
    found = len(detections)
    annotated = matched = unmatched = None
    if photo.annotated:
        annotated = len(photo.boxes)
        matched = len(match_boxes(detections, list(photo.boxes), threshold))
        unmatched = found - matched
    return PhotoScore(
        file=photo.file,
        expected=photo.faces_expected,
        found=found,
        counted=min(found, photo.faces_expected),
        false_detections=max(0, found - photo.faces_expected),
        annotated=annotated,
        matched=matched,
        unmatched=unmatched,
    )


@dataclass(frozen=True)
class Summary:
    photos: int
    faces_expected: int
    faces_counted: int
    faces_found_rate: float  # counted / expected
    boxes_annotated: int
    boxes_matched: int
    boxes_matched_rate: float  # matched / annotated
    false_detections: int
    false_per_10_photos: float
    unmatched_in_annotated_photos: int  # informational (see PhotoScore.unmatched)


def summarize(scores: list[PhotoScore]) -> Summary:
    expected = sum(s.expected for s in scores)
    counted = sum(s.counted for s in scores)
    annotated = sum(s.annotated or 0 for s in scores)
    matched = sum(s.matched or 0 for s in scores)
    false = sum(s.false_detections for s in scores)
    return Summary(
        photos=len(scores),
        faces_expected=expected,
        faces_counted=counted,
        faces_found_rate=counted / expected if expected else 0.0,
        boxes_annotated=annotated,
        boxes_matched=matched,
        boxes_matched_rate=matched / annotated if annotated else 0.0,
        false_detections=false,
        false_per_10_photos=10 * false / len(scores) if scores else 0.0,
        unmatched_in_annotated_photos=sum(s.unmatched or 0 for s in scores),
    )


# --- Targets --------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """What a detector must do to be the service's (the issue's figures)."""

    faces_found_rate: float = 0.90
    boxes_matched_rate: float = 0.85
    false_per_10_photos: float = 1.0
    ms_per_frame: float = 10.0  # 640-px frame, one core
    times_faster_than_dlib: float = 5.0  # dlib HOG timed in the same run


TARGETS = Targets()


def target_checks(
    summary: Summary, ms_per_frame: float | None, times_faster: float | None, targets: Targets = TARGETS
) -> dict[str, bool]:
    """Each target, met or not; a speed not measured counts as not met, so that a
    detector can never pass on figures nobody took."""
    return {
        "faces_found": summary.faces_found_rate >= targets.faces_found_rate,
        "boxes_matched": summary.boxes_matched_rate >= targets.boxes_matched_rate,
        "false_detections": summary.false_per_10_photos <= targets.false_per_10_photos,
        "ms_per_frame": ms_per_frame is not None and ms_per_frame <= targets.ms_per_frame,
        "times_faster_than_dlib": times_faster is not None and times_faster >= targets.times_faster_than_dlib,
    }


def meets_targets(checks: dict[str, bool]) -> bool:
    return all(checks.values())
