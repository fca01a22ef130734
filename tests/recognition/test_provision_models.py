from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.recognition.pipeline import catalog
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
