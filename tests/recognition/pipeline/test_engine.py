"""The pipeline as a plain library, with the real Dlib weights on the shared photos."""

import csv

import cv2
import numpy as np
import pytest

from apps.recognition.pipeline import catalog, tiling
from apps.recognition.pipeline.engine import FaceAnalyzer, ModelNotReady
from apps.recognition.pipeline.images import decode_image
from tests.faces import faces_dir, groups_hard_dir, photo_bytes

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 40_000_000}


@pytest.fixture(scope="module")
def analyzer(deepface_home):
    return FaceAnalyzer(model_name="Dlib", detector="dlib", deepface_home=deepface_home, detect_max_side=800)


def load(name):
    return decode_image(photo_bytes(name), **LIMITS)


def cosine(a, b):
    return 1 - float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def largest(analyzer, name):
    faces = analyzer.analyze(load(name))
    return max(faces, key=lambda f: f.face.box.w * f.face.box.h).embedding


def test_missing_weights_name_the_command_to_run(tmp_path):
    with pytest.raises(ModelNotReady) as error:
        FaceAnalyzer(model_name="Facenet", detector="dlib", deepface_home=tmp_path, detect_max_side=800)
    assert "provision_models" in str(error.value)
    assert "facenet_weights.onnx" in error.value.missing


def test_two_faces_in_the_couple_photo_boxes_in_original_pixels(analyzer):
    image = load("couple.jpg")
    faces = analyzer.analyze(image)
    assert len(faces) == 2
    for face in faces:
        box = face.face.box
        assert box.w > 300  # detected on a reduced copy, reported at full size
        assert 0 <= box.x and box.x + box.w <= image.shape[1]
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32


def test_all_faces_of_a_frame_are_embedded_in_one_call(analyzer):
    image = load("couple.jpg")
    faces = analyzer.detect(image)
    together = analyzer.embed(image, faces)
    alone = np.stack([analyzer.embed(image, [face])[0] for face in faces])
    assert together.shape == (2, 128)
    assert np.allclose(together, alone, atol=1e-5)


def test_same_person_is_close_and_others_are_far(analyzer):
    threshold = catalog.model_spec("Dlib").default_threshold
    img1, img2, img20 = (largest(analyzer, n) for n in ("img1.jpg", "img2.jpg", "img20.jpg"))
    assert cosine(img1, img2) < threshold
    assert cosine(img1, img20) > threshold


def test_default_dlib_threshold_verifies_the_shared_pairs(analyzer):
    """The built-in threshold keeps >= 99 % pair accuracy on the shared labelled pairs."""
    folder = faces_dir()
    with open(folder / "pairs.csv") as file:
        pairs = list(csv.DictReader(file))
    files = {p["file_x"] for p in pairs} | {p["file_y"] for p in pairs}
    # Photos from 330 to 2,500 px wide: every one must give a face.
    embeddings = {name: largest(analyzer, name) for name in sorted(files)}
    assert len(embeddings) == 25
    threshold = catalog.model_spec("Dlib").default_threshold
    correct = sum(
        (cosine(embeddings[p["file_x"]], embeddings[p["file_y"]]) <= threshold) == (p["Decision"] == "Yes")
        for p in pairs
    )
    assert correct / len(pairs) >= 0.99


def test_facenet_with_made_up_weights_gives_128_numbers(deepface_home):
    analyzer = FaceAnalyzer(model_name="Facenet", detector="dlib", deepface_home=deepface_home, detect_max_side=800)
    faces = analyzer.analyze(load("couple.jpg"))
    assert len(faces) == 2
    assert all(face.embedding.shape == (128,) and np.isfinite(face.embedding).all() for face in faces)


def test_facenet_runs_on_the_threads_it_is_given_with_the_same_embeddings(deepface_home):
    """DeepFace's ONNX session takes every core; a worker's takes RECOGNITION_MODEL_THREADS."""
    options = dict(model_name="Facenet512", detector="blazeface", deepface_home=deepface_home, detect_max_side=800)
    image = load("img1.jpg")
    default = FaceAnalyzer(**options).analyze(image)[0].embedding
    limited = FaceAnalyzer(**options, model_threads=1)
    assert limited._model.model.get_session_options().intra_op_num_threads == 1
    assert np.allclose(limited.analyze(image)[0].embedding, default, atol=1e-5)


@pytest.fixture(scope="module", params=["MobileFaceNet", "Faceplugin"])
def arcface_analyzer(request, deepface_home):
    return FaceAnalyzer(
        model_name=request.param,
        detector="blazeface",
        deepface_home=deepface_home,
        detect_max_side=640,
        model_threads=1,
    )


def test_the_arcface_models_verify_the_shared_pairs_on_their_template_crop(arcface_analyzer):
    """Real weights from the npm tarballs, aligned on the 5-point template: the shared
    pairs split at the best threshold with at most 2 errors of 299 (a box crop without
    the alignment scores near chance with these models, README)."""
    with open(faces_dir() / "pairs.csv") as file:
        pairs = list(csv.DictReader(file))
    files = sorted({p["file_x"] for p in pairs} | {p["file_y"] for p in pairs})
    embeddings = {name: largest(arcface_analyzer, name) for name in files}
    dimensions = catalog.model_spec(arcface_analyzer.model_name).dimensions
    assert all(vector.shape == (dimensions,) for vector in embeddings.values())
    distances = np.array([cosine(embeddings[p["file_x"]], embeddings[p["file_y"]]) for p in pairs])
    same = np.array([p["Decision"] == "Yes" for p in pairs])
    errors = min(int(((distances <= t) != same).sum()) for t in distances)
    assert errors <= 2, errors


def test_the_arcface_models_embed_a_frames_faces_in_one_batch_as_one_by_one(arcface_analyzer):
    image = load("couple.jpg")
    faces = arcface_analyzer.detect(image)
    assert len(faces) == 2 and all(len(face.arcface_points) == 5 for face in faces)
    together = arcface_analyzer.embed(image, faces)
    alone = np.stack([arcface_analyzer.embed(image, [face])[0] for face in faces])
    assert np.allclose(together, alone, atol=1e-5)
    assert arcface_analyzer._model.model.get_session_options().intra_op_num_threads == 1


def test_the_arcface_points_from_the_face_mesh_the_68_landmarks_and_blazefaces_keypoints_agree(deepface_home):
    """The default takes the ArcFace points from MediaPipe's face mesh, without loading
    dlib's 68 landmarks; evaluate_faces --arcface-points can ask for those or for 4 of
    BlazeFace's keypoints (eyes, nose tip, mouth centre). On real faces all three put
    the points in nearly the same places and embed the faces alike; the dlib detector,
    which has no keypoints, is refused them."""
    options = {"model_name": "MobileFaceNet", "deepface_home": deepface_home, "detect_max_side": 320}
    image = load("couple.jpg")
    by_mesh = FaceAnalyzer(detector="blazeface", **options)
    by_landmarks = FaceAnalyzer(detector="blazeface", arcface_points_source="landmarks68", **options)
    by_keypoints = FaceAnalyzer(detector="blazeface", arcface_points_source="keypoints", **options)
    assert by_mesh.arcface_points_source == "mesh" and by_mesh._landmarks_68 is None
    mesh_faces, landmark_faces = by_mesh.detect(image), by_landmarks.detect(image)
    keypoint_faces = by_keypoints.detect(image)
    assert len(mesh_faces) == 2 and all(len(face.arcface_points) == 5 for face in mesh_faces)
    assert all(len(face.arcface_points) == 4 for face in keypoint_faces)
    for mesh, landmarks, keypoints in zip(mesh_faces, landmark_faces, keypoint_faces, strict=True):
        five, other, four = (np.asarray(f.arcface_points) for f in (mesh, landmarks, keypoints))
        width = landmarks.box.w
        assert np.abs(five - other).max() < 0.06 * width
        # The keypoints come from the detector's 128-px input: within a tenth of the face.
        assert np.abs(five[:3] - four[:3]).max() < 0.1 * width
        assert np.abs(five[3:].mean(axis=0) - four[3]).max() < 0.1 * width
    reference = by_landmarks.embed(image, landmark_faces)
    for analyzer, faces, limit in ((by_mesh, mesh_faces, 0.05), (by_keypoints, keypoint_faces, 0.25)):
        distances = [cosine(a, b) for a, b in zip(reference, analyzer.embed(image, faces), strict=True)]
        assert max(distances) < limit, (analyzer.arcface_points_source, distances)
    with pytest.raises(ValueError, match="no keypoints"):
        FaceAnalyzer(detector="dlib", arcface_points_source="keypoints", **options)


def test_tiles_find_the_small_faces_of_a_crowd_and_leave_a_kiosk_frame_as_it_was(deepface_home):
    """BlazeFace sees a frame at 192 px: on the whole 1,280-px photo of fifteen people on
    a staircase it finds a few; with tiles of 480 px it finds nearly every one, each
    once, with its five alignment points. A 640-px frame is seen whole, tiles or not."""
    options = {"model_name": "MobileFaceNet", "detector": "blazeface", "deepface_home": deepface_home}
    whole = FaceAnalyzer(detect_max_side=800, detect_tile_px=0, **options)
    tiled = FaceAnalyzer(detect_max_side=800, detect_tile_px=480, **options)
    crowd = cv2.imread(str(groups_hard_dir() / "human-stock-group-1.jpg"))
    height, width = crowd.shape[:2]
    by_whole, by_tiles = whole.detect(crowd), tiled.detect(crowd)
    assert len(by_whole) <= 6 and 14 <= len(by_tiles) <= 15, (len(by_whole), len(by_tiles))
    for face in by_tiles:
        box = face.box
        assert 0 <= box.x and box.x + box.w <= width and 0 <= box.y and box.y + box.h <= height
        assert len(face.arcface_points) == 5
    for i, a in enumerate(by_tiles):
        assert all(tiling.coverage(a.box, b.box) < tiling.SAME_FACE_COVERAGE for b in by_tiles[i + 1 :])

    kiosk = cv2.resize(load("img1.jpg"), (640, 480), interpolation=cv2.INTER_AREA)
    assert [f.box for f in tiled.detect(kiosk)] == [f.box for f in whole.detect(kiosk)]
    # dlib's detector has no fixed small input: it is never tiled.
    assert FaceAnalyzer(detect_max_side=800, detect_tile_px=480, **{**options, "detector": "dlib"}).detect_tile_px == 0
