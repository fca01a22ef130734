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


def test_evaluate_faces_on_a_small_labelled_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for files in SUBSET.values():
        for name in files:
            (folder / name).symlink_to(faces_dir() / name)
    with open(folder / "labels.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "identity"])
        writer.writerows((name, identity) for identity, files in SUBSET.items() for name in files)
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
        "--json",
        str(tmp_path / "report.json"),
        stdout=out,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"pair_accuracy", "rank1", "stranger_accept_rate", "threshold", "model", "detector"} <= set(report)
    assert report["pair_accuracy"] == 1.0
    assert report["identification_probes"] == 4 and report["stranger_probes"] == 7
    assert report["rank1"] == 1.0 and report["stranger_accept_rate"] == 0.0
    assert "rank1" in out.getvalue()
