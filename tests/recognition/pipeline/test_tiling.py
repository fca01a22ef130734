import pytest

from apps.recognition.pipeline import tiling
from apps.recognition.pipeline.faces import Box
from apps.recognition.pipeline.tiling import Tile, coverage, merge, plan

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast


def test_a_frame_up_to_a_third_larger_than_a_tile_is_seen_whole_only():
    assert plan(480, 640, 640) == []
    # A kiosk's 640-px frame with tiles of 480: one pass, as without tiles.
    assert plan(480, 640, 480) == [] and plan(640, 640, 480) == []
    assert len(plan(480, 641, 480)) == 2
    # Tiles off.
    assert plan(1080, 1920, 0) == []


def test_a_full_hd_frame_in_tiles_of_480():
    tiles = plan(1080, 1920, 480)
    # (1920 - 480) / (480 - 120) = 4: 5 columns; (1080 - 480) / 360 = 1.67: 3 rows.
    assert sorted({t.x for t in tiles}) == [0, 360, 720, 1080, 1440]
    assert sorted({t.y for t in tiles}) == [0, 300, 600] and len(tiles) == 15


def test_a_full_hd_frame_is_covered_by_overlapping_squares():
    tiles = plan(1080, 1920, 640)
    xs, ys = sorted({t.x for t in tiles}), sorted({t.y for t in tiles})
    # (1920 - 640) / (640 - 160) = 2.67: 4 columns; (1080 - 640) / 480 = 0.92: 2 rows.
    assert (xs, ys) == ([0, 427, 853, 1280], [0, 440])
    assert all((t.w, t.h) == (640, 640) for t in tiles) and len(tiles) == 8
    # Each tile overlaps the next by at least a quarter of its side (a face up to 160 px
    # lies whole in one of them), and together they reach every edge.
    assert all(b - a <= 640 - 160 for a, b in zip(xs, xs[1:], strict=False))
    assert all(b - a <= 640 - 160 for a, b in zip(ys, ys[1:], strict=False))
    assert xs[-1] + 640 == 1920 and ys[-1] + 640 == 1080


def test_a_frame_long_one_way_only_gets_tiles_of_its_short_side():
    tiles = plan(500, 1500, 640)
    assert [(t.x, t.y, t.w, t.h) for t in tiles] == [(0, 0, 640, 500), (430, 0, 640, 500), (860, 0, 640, 500)]


def test_the_window_indexes_rows_then_columns():
    rows, columns = Tile(x=10, y=20, w=30, h=40).window
    assert (rows.start, rows.stop, columns.start, columns.stop) == (20, 60, 10, 40)


def test_a_box_on_an_inner_edge_is_cut_one_on_the_frames_edge_is_not():
    tile = Tile(x=400, y=0, w=640, h=640)
    frame = (1920, 1080)
    assert not tile.cuts(Box(500, 100, 50, 50), *frame)
    assert tile.cuts(Box(401, 100, 50, 50), *frame)  # the tile's left edge, inside the frame
    assert tile.cuts(Box(1000, 100, 39, 50), *frame)  # right edge: 1039 >= 1040 - 2
    assert tile.cuts(Box(500, 600, 50, 39), *frame)  # bottom edge, inside the frame
    assert not tile.cuts(Box(500, 0, 50, 50), *frame)  # the top edge is the frame's own
    corner = Tile(x=1280, y=440, w=640, h=640)
    assert not corner.cuts(Box(1870, 1030, 50, 50), *frame)


def test_coverage_is_of_the_smaller_box():
    assert coverage(Box(0, 0, 100, 100), Box(25, 25, 50, 50)) == 1.0
    assert coverage(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(0.5)
    assert coverage(Box(0, 0, 10, 10), Box(10, 0, 10, 10)) == 0.0
    assert coverage(Box(0, 0, 0, 0), Box(0, 0, 10, 10)) == 0.0


def test_one_face_seen_in_two_passes_is_kept_once_with_its_best_score():
    whole = Box(100, 100, 60, 60)
    tighter = Box(110, 115, 40, 40)  # inside the loose box: covers all of the smaller one
    neighbour = Box(170, 100, 60, 60)  # beside it, touching: another face
    assert merge([whole, tighter, neighbour], [0.7, 0.9, 0.8]) == [1, 2]


def test_faces_that_overlap_a_little_are_both_kept():
    front, behind = Box(0, 0, 100, 100), Box(70, 0, 100, 100)  # 30 % of each covered
    assert coverage(front, behind) < tiling.SAME_FACE_COVERAGE
    assert merge([front, behind], [0.9, 0.6]) == [0, 1]
