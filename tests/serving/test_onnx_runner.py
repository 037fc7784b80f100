"""Tests of the ONNX Runtime session wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from harpagon.errors import ConfigError
from harpagon.serving.ocr import model_path
from harpagon.serving.onnx_runner import OnnxRunner, TensorSpec


def test_missing_model_file_rejected(tmp_path):
    with pytest.raises(ConfigError, match="ONNX model file not found"):
        OnnxRunner(tmp_path / "absent.onnx")


def test_invalid_model_file_rejected(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(ConfigError, match="failed to load the model"):
        OnnxRunner(path)


def test_threads_below_one_rejected():
    with pytest.raises(ConfigError, match="threads must be an integer >= 1, got 0"):
        OnnxRunner(model_path("cls"), threads=0)


def test_tensor_spec_static_flag():
    assert TensorSpec("x", (1, 3, 48, 192), "tensor(float)").is_static
    assert not TensorSpec("x", (None, 3, "h", 192), "tensor(float)").is_static


@pytest.mark.slow
def test_classifier_session_runs_batches():
    runner = OnnxRunner(model_path("cls"), threads=1)
    session_options = runner.session.get_session_options()

    assert session_options.intra_op_num_threads == 1
    assert session_options.inter_op_num_threads == 1
    assert runner.input.name == "x"
    assert runner.input.shape[1] == 3
    assert not runner.input.is_static
    for batch_size in (1, 2, 4, 8):
        batch = np.zeros((batch_size, 3, 48, 192), np.float32)
        (probabilities,) = runner.run(batch)
        assert probabilities.shape == (batch_size, 2)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_run_accepts_input_mapping():
    runner = OnnxRunner(model_path("cls"), threads=2)
    batch = np.random.default_rng(0).standard_normal((2, 3, 48, 192)).astype(np.float32)

    by_array = runner.run(batch)[0]
    by_name = runner.run({"x": batch})[0]

    np.testing.assert_array_equal(by_array, by_name)


@pytest.mark.slow
def test_recogniser_metadata_has_characters():
    runner = OnnxRunner(model_path("rec"), threads=1)

    characters = runner.metadata["character"].splitlines()

    assert len(characters) > 6000
    assert "a" in characters
