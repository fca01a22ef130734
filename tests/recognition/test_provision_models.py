import importlib.util
import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.recognition.pipeline import catalog, weights
from tests.faces import faces_dir
from tests.support.facenet_onnx import write_facenet128_onnx


def provision(home, *args) -> str:
    out, err = StringIO(), StringIO()
    with override_settings(DEEPFACE_HOME=home):
        call_command("provision_models", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_dlib_is_provisioned_offline_from_its_package(tmp_path):
    output = provision(tmp_path, "--model", "Dlib", "--offline")
    assert "models ready: Dlib" in output
    assert catalog.missing_files("Dlib", "dlib", tmp_path) == []


def test_facenet_from_a_file_on_a_machine_without_network(tmp_path):
    output = provision(tmp_path, "--model", "Facenet", "--offline")
    assert "Facenet: NOT READY" in output and "--from-file" in output
    weights_file = tmp_path / "facenet.onnx"
    write_facenet128_onnx(weights_file)
    output = provision(tmp_path / "home", "--model", "Facenet", "--from-file", str(weights_file))
    assert "models ready: Facenet" in output
    assert catalog.model_ready("Facenet", tmp_path / "home")


def test_a_file_that_is_not_the_models_weights_is_refused_and_nothing_installed(tmp_path):
    garbage = tmp_path / "facenet.onnx"
    garbage.write_bytes(bytes(range(256)) * 4)  # 1,024 bytes named like weights
    with pytest.raises(CommandError, match="is not Facenet's weights: it does not load"):
        provision(tmp_path / "home", "--model", "Facenet", "--from-file", str(garbage))
    assert not catalog.model_ready("Facenet", tmp_path / "home")
    # A real model of another width is refused too: Facenet512's weights are not Facenet's.
    facenet512 = catalog.weights_dir(settings.DEEPFACE_HOME) / catalog.model_spec("Facenet512").weight_file
    with pytest.raises(CommandError, match="512 dimensions; Facenet's have 128"):
        provision(tmp_path / "home", "--model", "Facenet", "--from-file", str(facenet512))
    assert not catalog.model_ready("Facenet", tmp_path / "home")


def provision_with_sources(home, sources, *args) -> str:
    with override_settings(MODEL_SOURCES_DIR=sources):
        return provision(home, *args)


def test_a_tarball_whose_hash_differs_is_refused_and_the_other_models_still_provision(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    tampered = sources / weights.FACEPLUGIN_SOURCE.tarball_name
    tampered.write_bytes(b"not the package the registry serves")  # as if swapped on the way
    output = provision_with_sources(tmp_path / "home", sources, "--model", "Faceplugin", "--model", "Dlib", "--offline")
    assert "is not the pinned sha512-" in output and "deleted, nothing installed" in output
    assert "Faceplugin: NOT READY" in output and "models ready: Dlib" in output
    assert not tampered.exists()
    assert not catalog.model_ready("Faceplugin", tmp_path / "home")
    assert not (catalog.weights_dir(tmp_path / "home") / "faceplugin_fr_feature.onnx.partial").exists()


def test_without_npm_the_message_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no npm on it
    output = provision_with_sources(tmp_path / "home", tmp_path / "sources", "--model", "MobileFaceNet", "--offline")
    assert "npm is not installed" in output and "make npm" in output
    assert weights.MOBILEFACENET_SOURCE.tarball_name in output  # or put the tarball there by hand
    assert not catalog.model_ready("MobileFaceNet", tmp_path / "home")


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, Path(settings.BASE_DIR) / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_conversion_that_does_not_match_the_original_is_refused_and_nothing_written(tmp_path, monkeypatch):
    """The shipped fr_feature.onnx (its tarball checked again here) made batch-dynamic by
    the real tool, with one of its weights changed by 1 % on the way, as a faulty
    converter would: the check against the original refuses it."""
    from onnx import numpy_helper

    source = weights.npm_member(weights.FACEPLUGIN_SOURCE, settings.MODEL_SOURCES_DIR)
    tool = load_tool("embedder_onnx")
    make_batch_dynamic = tool.make_batch_dynamic

    def faulty(model):
        fixed = make_batch_dynamic(model)
        weight = next(i for i in model.graph.initializer if len(i.dims) == 4)
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.01, weight.name))
        return fixed

    monkeypatch.setattr(tool, "make_batch_dynamic", faulty)
    out = tmp_path / "faceplugin.onnx"
    photos = ["--photos", str(faces_dir())]
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--source", str(source), "--out", str(out), *photos])
    assert exit_.value.code == 1
    assert not out.exists() and not out.with_name(out.name + ".json").exists()
    # The same tool without the fault writes the file, 512-d, batch dynamic.
    monkeypatch.setattr(tool, "make_batch_dynamic", make_batch_dynamic)
    assert tool.main(["--source", str(source), "--out", str(out), *photos]) == 0
    provenance = json.loads(out.with_name(out.name + ".json").read_text())
    assert provenance["onnx"]["dimensions"] == 512 and provenance["onnx"]["fixed_batch_of_source"] == 1
    assert provenance["verification"]["max_abs_diff"] <= 1e-4
