"""The labelled photo sets the evaluation reads: labels.csv (file, identity) and
pairs.csv (file_x, file_y, Decision, fold), as in ../shared/datasets."""

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str


@dataclass(frozen=True)
class Pair:
    x: Path
    y: Path
    same: bool
    fold: int | None


def read_labels(labels_csv: Path) -> list[Photo]:
    folder = labels_csv.parent
    with open(labels_csv, newline="") as file:
        return [Photo(folder / row["file"], row["identity"]) for row in csv.DictReader(file)]


def read_pairs(pairs_csv: Path) -> list[Pair]:
    folder = pairs_csv.parent
    with open(pairs_csv, newline="") as file:
        return [
            Pair(
                folder / row["file_x"],
                folder / row["file_y"],
                row["Decision"].strip().lower() in {"yes", "1", "true"},
                int(row["fold"]) if row.get("fold") not in (None, "") else None,
            )
            for row in csv.DictReader(file)
        ]
