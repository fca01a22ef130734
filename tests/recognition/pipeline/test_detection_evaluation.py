import pytest

from apps.recognition.pipeline import detection_evaluation as de
from apps.recognition.pipeline.detection_evaluation import GroupPhoto, iou, match_boxes, score_photo

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        # Half a box to the right: 5 x 10 = 50 shared, 100 + 100 - 50 = 150 in all.
        ((0, 0, 10, 10), (5, 0, 10, 10), 50 / 150),
        # Shifted 2 px both ways: 2 x 2 = 4 shared, 16 + 16 - 4 = 28 in all.
        ((0, 0, 4, 4), (2, 2, 4, 4), 4 / 28),
        # A 5 x 5 box inside a 10 x 10 one: 25 / 100.
        ((0, 0, 10, 10), (2, 2, 5, 5), 0.25),
        # Touching edges share no area.
        ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),
        ((0, 0, 10, 10), (20, 20, 5, 5), 0.0),
    ],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_iou_of_empty_boxes_is_zero():
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


# Two faces side by side and two detections. D0 overlaps T0 by 6 px (60 / 140 = 0.4286)
# and T1 by 8 px (80 / 120 = 0.667); D1 is exactly T1 (1.0) and overlaps T0 by 4 px
# (40 / 160 = 0.25).
T0, T1 = (0, 0, 10, 10), (6, 0, 10, 10)
D0, D1 = (4, 0, 10, 10), (6, 0, 10, 10)


def test_matching_takes_the_highest_iou_first():
    # Detection by detection, D0 would take T1 (its best) and leave D1 with T0 at 0.25:
    # one match. Highest first: D1-T1 (1.0), then D0-T0 (0.4286): both faces.
    matches = match_boxes([D0, D1], [T0, T1], threshold=0.4)
    assert [(m.detection, m.truth) for m in matches] == [(1, 1), (0, 0)]
    assert matches[0].iou == pytest.approx(1.0)
    assert matches[1].iou == pytest.approx(60 / 140)


def test_matching_respects_the_threshold():
    # At 0.45, D0-T0 (0.4286) no longer counts and D0-T1 is taken by D1.
    matches = match_boxes([D0, D1], [T0, T1], threshold=0.45)
    assert [(m.detection, m.truth) for m in matches] == [(1, 1)]


def test_matching_is_one_to_one():
    # Two detections on one face: only the better one (1.0 against 50 / 150) matches.
    matches = match_boxes([(5, 0, 10, 10), (0, 0, 10, 10)], [(0, 0, 10, 10)], threshold=0.3)
    assert [(m.detection, m.truth) for m in matches] == [(1, 0)]


def test_extra_detections_are_false_and_never_make_up_for_misses():
    photo = GroupPhoto("group.jpg", faces_expected=2, counted_from="visual", notes="")
    three = score_photo(photo, [(0, 0, 10, 10), (20, 0, 10, 10), (40, 0, 10, 10)])
    assert (three.found, three.counted, three.false_detections) == (3, 2, 1)
    assert three.annotated is None and three.matched is None and three.unmatched is None
    one = score_photo(photo, [(0, 0, 10, 10)])
    assert (one.found, one.counted, one.false_detections) == (1, 1, 0)


def test_every_detection_on_the_dogs_photo_is_false():
    dogs = GroupPhoto("dogs.jpg", faces_expected=0, counted_from="visual", notes="4 dog faces")
    score = score_photo(dogs, [(10, 10, 50, 50), (100, 10, 50, 50)])
    assert (score.expected, score.found, score.counted, score.false_detections) == (0, 2, 0, 2)
    assert score_photo(dogs, []).false_detections == 0


def test_unmatched_detections_on_annotated_photos_are_reported_apart():
    # Three boxed faces, three detections: two on boxed faces, one on an unboxed
    # background face. As many detections as faces: no false detection, one unmatched.
    photo = GroupPhoto(
        "voc.jpg",
        faces_expected=3,
        counted_from="boxes",
        notes="",
        boxes=((0, 0, 40, 40), (100, 0, 40, 40), (200, 0, 40, 40)),
    )
    score = score_photo(photo, [(2, 2, 40, 40), (100, 0, 40, 40), (300, 300, 40, 40)])
    # (2, 2, 40, 40) against (0, 0, 40, 40): 38 x 38 = 1444 shared, 1600 + 1600 - 1444 = 1756 in all.
    assert iou((2, 2, 40, 40), (0, 0, 40, 40)) == pytest.approx(1444 / 1756)
    assert (score.annotated, score.matched, score.unmatched, score.false_detections) == (3, 2, 1, 0)


def test_summary_and_targets():
    scores = [
        score_photo(GroupPhoto("a.jpg", 4, "boxes", "", boxes=((0, 0, 10, 10), (20, 0, 10, 10))), [(0, 0, 10, 10)]),
        score_photo(GroupPhoto("b.jpg", 6, "visual", ""), [(0, 0, 10, 10)] * 6),
        score_photo(GroupPhoto("dogs.jpg", 0, "visual", ""), [(0, 0, 10, 10)]),
        score_photo(GroupPhoto("c.jpg", 0, "visual", ""), []),
    ]
    summary = de.summarize(scores)
    # Faces: 1 + 6 + 0 + 0 = 7 of 10; boxes: 1 of 2; false: the dogs' one, in 4 photos.
    assert (summary.faces_counted, summary.faces_expected, summary.faces_found_rate) == (7, 10, 0.7)
    assert (summary.boxes_matched, summary.boxes_annotated, summary.boxes_matched_rate) == (1, 2, 0.5)
    assert (summary.false_detections, summary.false_per_10_photos) == (1, 2.5)

    checks = de.target_checks(summary, ms_per_frame=5.0, times_faster=20.0)
    assert checks == {
        "faces_found": False,
        "boxes_matched": False,
        "false_detections": False,
        "ms_per_frame": True,
        "times_faster_than_dlib": True,
    }
    assert not de.meets_targets(checks)


def test_targets_are_met_only_with_every_figure_measured():
    perfect = de.summarize(
        [score_photo(GroupPhoto("a.jpg", 1, "boxes", "", boxes=((0, 0, 10, 10),)), [(0, 0, 10, 10)])]
    )
    assert de.meets_targets(de.target_checks(perfect, ms_per_frame=15.0, times_faster=5.0))
    assert not de.meets_targets(de.target_checks(perfect, ms_per_frame=15.1, times_faster=5.0))
    assert not de.meets_targets(de.target_checks(perfect, ms_per_frame=None, times_faster=None))


def test_a_folder_counted_by_eye_is_not_checked_for_boxes():
    by_eye = de.summarize([score_photo(GroupPhoto("a.jpg", 2, "by eye", ""), [(0, 0, 10, 10), (20, 0, 10, 10)])])
    checks = de.target_checks(by_eye, ms_per_frame=5.0, times_faster=20.0)
    assert "boxes_matched" not in checks and de.meets_targets(checks)


def test_recall_by_size_puts_each_annotated_box_in_the_bin_of_its_width():
    photos = [
        GroupPhoto("a.jpg", 3, "boxes", "", boxes=((0, 0, 20, 20), (100, 0, 40, 40), (200, 0, 200, 200))),
        GroupPhoto("b.jpg", 1, "visual", ""),  # no boxes: not in the breakdown
    ]
    detections = {"a.jpg": [(100, 0, 40, 40), (200, 0, 200, 200)], "b.jpg": [(0, 0, 5, 5)]}
    rows = de.recall_by_size(photos, detections)
    assert [(r["from_px"], r["to_px"], r["boxes"], r["matched"]) for r in rows] == [
        (0, 32, 1, 0),
        (32, 48, 1, 1),
        (160, None, 1, 1),
    ]


def test_the_score_curve_trades_faces_for_false_detections():
    photos = [GroupPhoto("a.jpg", 2, "visual", ""), GroupPhoto("dogs.jpg", 0, "visual", "")]
    scores = {"a.jpg": [0.9, 0.6, 0.5], "dogs.jpg": [0.55]}
    points = de.score_curve(photos, scores)
    summary = [(p["min_score"], p["faces_found_rate"], p["false_per_10_photos"]) for p in points]
    # Every detection kept: 2 of 2 faces, 1 extra in a.jpg and 1 on the dogs, in 2 photos.
    assert summary == [(0.5, 1.0, 10.0), (0.55, 1.0, 5.0), (0.6, 1.0, 0.0), (0.9, 0.5, 0.0)]
    assert de.curve_summary(points, shares=(0.0, 1.0)) == [points[0], points[-1]]
    assert de.curve_summary([]) == []


def test_a_small_face_is_found_by_a_box_around_its_centre_of_about_its_size():
    truth = (100, 100, 20, 24)
    assert de.finds_face(truth, [(95, 95, 30, 30)])
    assert not de.finds_face(truth, [(95, 95, 9, 30)])  # too small: under half its width
    assert not de.finds_face(truth, [(60, 60, 60, 60)])  # too large: over twice its width
    assert not de.finds_face(truth, [(115, 115, 20, 20)])  # beside the centre
    assert not de.finds_face(truth, [])


def test_a_collage_frame_places_each_face_at_its_distance_between_the_eyes():
    import numpy as np

    # Two 100-px photos whose eyes are 40 px apart, each face the middle 50 px.
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[25:75, 25:75] = 255
    queue = [(photo, (25, 25, 50, 50), 40.0) for _ in range(3)]
    frame, truths = de.small_faces_frame(queue, eye_px=20, size=(200, 100))
    # Shrunk by half to 50 px, in 100-px cells: two fit in a 200 x 100 frame.
    assert frame.shape == (100, 200, 3) and len(truths) == 2 and len(queue) == 1
    assert de.collage_cells(200, 100, 100) == [(0, 0), (100, 0)]
    for x, y, w, h in truths:
        assert (w, h) == (25, 25)
        assert frame[y + h // 2, x + w // 2].tolist() == [255, 255, 255]  # the face is where its box says
    assert frame[0, 199].tolist() == [128, 128, 128]  # grey between the photos


def test_the_small_faces_target_is_at_20_px_between_the_eyes():
    assert de.small_faces_check([{"eye_px": 20, "faces": 10, "found": 8}])
    assert not de.small_faces_check([{"eye_px": 20, "faces": 10, "found": 7}])
    assert not de.small_faces_check([{"eye_px": 32, "faces": 10, "found": 10}])  # not measured at 20
    assert not de.small_faces_check([{"eye_px": 20, "faces": 0, "found": 0}])


def test_read_groups(tmp_path):
    (tmp_path / "faces.csv").write_text(
        "file,faces_expected,counted_from,people,notes\n"
        "voc.jpg,2,training.xml boxes,,PASCAL VOC photo\n"
        "dogs.jpg,0,visual,,4 dog faces; negative for human faces\n"
    )
    (tmp_path / "boxes.csv").write_text("file,x,y,w,h\nvoc.jpg,1,2,37,38\nvoc.jpg,50,60,44,44\n")
    voc, dogs = de.read_groups(tmp_path)
    assert (voc.file, voc.faces_expected, voc.boxes) == ("voc.jpg", 2, ((1, 2, 37, 38), (50, 60, 44, 44)))
    assert voc.annotated and not dogs.annotated
    assert (dogs.faces_expected, dogs.notes) == (0, "4 dog faces; negative for human faces")


def test_boxes_of_a_photo_not_listed_are_refused(tmp_path):
    (tmp_path / "faces.csv").write_text("file,faces_expected,counted_from,people,notes\na.jpg,1,visual,,\n")
    (tmp_path / "boxes.csv").write_text("file,x,y,w,h\nb.jpg,0,0,10,10\n")
    with pytest.raises(ValueError, match="b.jpg"):
        de.read_groups(tmp_path)


def test_importing_it_loads_neither_django_nor_celery():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys\n"
        "from apps.recognition.pipeline import detection_evaluation\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery'))\n"
        "print(leaked)\n"
        "sys.exit(1 if leaked else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
