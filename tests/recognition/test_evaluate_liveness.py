"""evaluate_liveness end to end: the real model on the shared photos and a video, and an
attacks file. The "attacks" here are real photos labelled as attacks only to check the
counting (APCER is the attacks called live): no figure of the README comes from them."""

import csv
import io

from django.core.management import call_command

from tests.faces import faces_dir, video


def test_bpcer_and_apcer_with_their_counts(tmp_path):
    attacks = tmp_path / "attacks.csv"
    with open(attacks, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "attack"])
        for name in ("img1.jpg", "img2.jpg"):
            writer.writerow([str(faces_dir() / name), "counting-check"])
    out = io.StringIO()
    call_command(
        "evaluate_liveness",
        "--real",
        str(faces_dir()),
        "--video",
        str(video("five_frames.mp4")),
        "--video-every",
        "1",
        "--attacks",
        str(attacks),
        "--threshold",
        "0.5",
        "--no-progress",
        stdout=out,
    )
    text = out.getvalue()
    faces_row = next(line for line in text.splitlines() if line.startswith("| photos: faces |"))
    assert "| 0.0 % (0/" in faces_row  # every real face of the shared photos is called live
    # Both "attacks" are live faces: both pass, APCER 2/2, with its interval.
    assert "| counting-check | 2 | 100.0 % (2/2; 34.2-100.0) |" in text
    assert "ms a face" in text
