import csv
import json
from io import StringIO

from django.core.management import call_command

from tests.faces import faces_dir

SUBSET = {
    "id01": ["img1.jpg", "img2.jpg", "img4.jpg"],
    "id03": ["img13.jpg", "img14.jpg"],
    "id06": ["img20.jpg", "img21.jpg"],
}


def labelled_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for files in SUBSET.values():
        for name in files:
            (folder / name).symlink_to(faces_dir() / name)
    with open(folder / "labels.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "identity"])
        writer.writerows((name, identity) for identity, files in SUBSET.items() for name in files)
    return folder


def test_evaluate_faces_on_a_small_labelled_folder(tmp_path):
    folder = labelled_folder(tmp_path)
    with open(folder / "pairs.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file_x", "file_y", "Decision"])
        writer.writerows(
            [("img1.jpg", "img2.jpg", "Yes"), ("img13.jpg", "img14.jpg", "Yes"), ("img1.jpg", "img20.jpg", "No")]
        )
    out = StringIO()
    call_command(
        "evaluate_faces",
        "--labels",
        str(folder / "labels.csv"),
        "--pairs",
        str(folder / "pairs.csv"),
        "--enroll-per-identity",
        "1",
        "--gallery-sizes",
        "2",
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--workers",
        "1",
        "--json",
        str(tmp_path / "report.json"),
        "--det",
        str(tmp_path / "det.png"),
        stdout=out,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    required = {
        "model",
        "detector",
        "enroll_per_identity",
        "gallery",
        "mated_probes",
        "nonmated_probes",
        "photos_without_face",
        "verification_accuracy_10fold",
        "fnir_at_fpir_0.01",
        "rank1_closed_set",
        "threshold",
        "mated_recognized",
        "mated_misidentified",
        "mated_called_stranger",
        "strangers_accepted",
    }
    assert required <= set(report)
    # id01 (3 photos) and id03, id06 (2 each) are enrolled with one photo: 4 mated probes,
    # no stranger; without fold numbers there is no 10-fold figure.
    assert (report["gallery"], report["mated_probes"], report["nonmated_probes"]) == (3, 4, 0)
    assert report["verification_accuracy_10fold"] is None and report["verification_best_accuracy"] == 1.0
    assert report["rank1_closed_set"] == 1.0 and report["photos_without_face"] == 0
    assert report["threshold_source"] == "calibrated" and report["mated_recognized"] == 1.0
    assert report["gallery_size_curve"][0]["gallery"] == 2
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rank1_closed_set" in out.getvalue()

    # A second run reads every face from the cache (keyed by the photos' content): no
    # model is loaded, so it is faster than the first.
    again = StringIO()
    call_command(
        "evaluate_faces",
        "--labels",
        str(folder / "labels.csv"),
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--workers",
        "1",
        "--no-progress",
        "--gallery-sizes",
        "",
        "--json",
        str(tmp_path / "again.json"),
        stdout=again,
    )
    second = json.loads((tmp_path / "again.json").read_text())
    assert second["mated_recognized"] == report["mated_recognized"]
    assert second["seconds"] < report["seconds"]


def test_strangers_are_the_people_not_enrolled(tmp_path):
    """With K = 2, only id01 (3 photos) is enrolled; id03's and id06's photos are
    non-mated probes, and none of them may be taken for id01."""
    folder = labelled_folder(tmp_path)
    call_command(
        "evaluate_faces",
        "--labels",
        str(folder / "labels.csv"),
        "--enroll-per-identity",
        "2",
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--workers",
        "1",
        "--no-progress",
        "--gallery-sizes",
        "",
        "--json",
        str(tmp_path / "report.json"),
        stdout=StringIO(),
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["gallery"], report["mated_probes"], report["nonmated_probes"]) == (1, 1, 4)
    assert report["strangers_accepted"] == 0.0 and report["mated_recognized"] == 1.0
