"""Frontend tests: the v2 wire format (against tritonclient's encoder) and every endpoint."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from tritonclient.http._utils import _get_inference_request

from harpagon.errors import ConfigError
from harpagon.serving.frontend import HEADER_LENGTH, decode_infer_request, encode_infer_response
from harpagon.serving.server import ServingOptions, running_server
from harpagon.serving.toy import MAX_VALUES, ToyAdapter, toy_plan

# --- wire format, no server ----------------------------------------------------------------


def _triton_body(inputs: list[triton_http.InferInput], outputs=None) -> tuple[bytes, int | None]:
    return _get_inference_request(
        inputs=inputs, request_id="7", outputs=outputs, sequence_id=0, sequence_start=False,
        sequence_end=False, priority=0, timeout=None, custom_parameters=None,
    )


def test_decode_triton_binary_inputs() -> None:
    values = triton_http.InferInput("values", [2, 2], "FP32")
    values.set_data_from_numpy(np.array([[1, 2], [3, 4]], dtype=np.float32))
    words = triton_http.InferInput("words", [2], "BYTES")
    words.set_data_from_numpy(np.array([b"ab", b"\x00\xffz"], dtype=object))
    body, header_length = _triton_body([values, words])

    request, inputs = decode_infer_request(body, header_length)

    assert request["id"] == "7"
    assert inputs["values"]["datatype"] == "FP32"
    assert inputs["values"]["shape"] == [2, 2]
    np.testing.assert_array_equal(inputs["values"]["data"], [1, 2, 3, 4])
    assert inputs["words"]["data"] == [b"ab", b"\x00\xffz"]


def test_decode_triton_json_inputs() -> None:
    values = triton_http.InferInput("values", [3], "INT64")
    values.set_data_from_numpy(np.array([5, 6, 7], dtype=np.int64), binary_data=False)
    body, header_length = _triton_body([values])
    assert header_length is None

    _, inputs = decode_infer_request(body, header_length)

    np.testing.assert_array_equal(inputs["values"]["data"], [5, 6, 7])
    assert inputs["values"]["data"].dtype == np.int64


def test_decode_json_base64_image() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    body = json.dumps({"inputs": [
        {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(png).decode()]},
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["abcd"]},
    ]}).encode()

    _, inputs = decode_infer_request(body, None)

    assert inputs["image"]["data"] == [png]
    assert inputs["text"]["data"] == [b"abcd"]


@pytest.mark.parametrize(
    ("request_json", "message"),
    [
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2]}]},
         r"shape \[3\] has 3 elements, but the data has 2"),
        ({"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1], "data": [1]}]},
         "unsupported datatype 'FLOAT'"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": "3", "data": [1]}]},
         "'shape' must be a list of integers"),
        ({"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": ["a"]}]},
         "not valid INT8"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]},
         "no 'data' and no binary_data_size"),
        ({"inputs": {"name": "x"}}, "'inputs' list"),
    ],
)
def test_decode_rejects_malformed(request_json: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode_infer_request(json.dumps(request_json).encode(), None)


def test_decode_rejects_binary_overrun() -> None:
    header = json.dumps({"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [4], "parameters": {"binary_data_size": 16}},
    ]}).encode()
    with pytest.raises(ConfigError, match="binary_data_size 16 does not fit the 8 bytes"):
        decode_infer_request(header + bytes(8), len(header))


def test_encode_binary_read_by_triton() -> None:
    outputs = {"text": np.array([b"hello", "w\u00f6rld"], dtype=object),
               "boxes": np.arange(16, dtype=np.float32).reshape(2, 4, 2)}
    request = {"id": "9", "parameters": {"binary_data_output": True}}

    body, header_length = encode_infer_response("ocr", outputs, request, {"text": "BYTES"})
    result = triton_http.InferResult.from_response_body(body, header_length=header_length)

    assert result.get_response()["id"] == "9"
    assert result.as_numpy("text").tolist() == [b"hello", "w\u00f6rld".encode()]
    np.testing.assert_array_equal(result.as_numpy("boxes"), outputs["boxes"])


def test_encode_json_output_subset() -> None:
    outputs = {"a": np.array([1.5, 2.5], dtype=np.float32), "b": np.array([1], dtype=np.int32)}
    request = {"outputs": [{"name": "b", "parameters": {"binary_data": False}}]}

    body, header_length = encode_infer_response("m", outputs, request, {})

    assert header_length is None
    response = json.loads(body)
    assert response["outputs"] == [{"name": "b", "datatype": "INT32", "shape": [1], "data": [1]}]


def test_encode_unknown_output_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown output 'c'"):
        encode_infer_response("m", {"a": np.zeros(1)}, {"outputs": [{"name": "c"}]}, {})


# --- endpoints on a running toy server ---------------------------------------------------------


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=5.0)
    options = ServingOptions(max_body_bytes=4096)
    with running_server(
        plan, ToyAdapter(batch_ms=5.0), profiles=profiles, hardware=hardware, options=options
    ) as base_url:
        yield base_url


def _infer_json(values: list[float], datatype: str = "FP32", shape: list[int] | None = None) -> dict:
    return {"inputs": [{"name": "values", "datatype": datatype,
                        "shape": [len(values)] if shape is None else shape, "data": values}]}


@pytest.mark.slow
def test_health_endpoints(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    ready = httpx.get(f"{url}/v2/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}
    model_ready = httpx.get(f"{url}/v2/models/toy/ready")
    assert model_ready.status_code == 200
    assert model_ready.json()["ready"] is True
    assert "binary_tensor_data" in httpx.get(f"{url}/v2").json()["extensions"]


@pytest.mark.slow
def test_model_metadata(url: str) -> None:
    metadata = httpx.get(f"{url}/v2/models/toy").json()
    assert metadata["name"] == "toy"
    assert metadata["inputs"][0] == {"name": "values", "datatype": "FP32", "shape": [-1]}
    names = [output["name"] for output in metadata["outputs"]]
    assert names == ["doubled", "squares", "total", "sum_of_squares"]
    assert metadata["parameters"]["slo_ms"] == toy_plan(20.0, batch_ms=5.0)[0].slo_ms
    assert metadata["parameters"]["rate"] == 20.0


@pytest.mark.slow
def test_unknown_model_is_404(url: str) -> None:
    for response in (
        httpx.get(f"{url}/v2/models/resnet"),
        httpx.get(f"{url}/v2/models/resnet/ready"),
        httpx.post(f"{url}/v2/models/resnet/infer", json=_infer_json([1.0])),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "unknown model 'resnet'; known models: toy"}


@pytest.mark.slow
def test_unknown_route_uses_error_shape(url: str) -> None:
    response = httpx.get(f"{url}/v2/nothing")
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.slow
def test_infer_json_round_trip(url: str) -> None:
    response = httpx.post(f"{url}/v2/models/toy/infer", json={**_infer_json([1.0, -2.0]), "id": "a1"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "a1"
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["doubled"]["data"] == [2.0, -4.0]
    assert outputs["squares"]["data"] == [4.0, 16.0]
    assert outputs["total"] == {"name": "total", "datatype": "FP32", "shape": [1], "data": [-2.0]}
    assert outputs["sum_of_squares"]["data"] == [20.0]


@pytest.mark.slow
def test_infer_binary_round_trip(url: str) -> None:
    values = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    header = json.dumps({
        "inputs": [{"name": "values", "datatype": "FP32", "shape": [3],
                    "parameters": {"binary_data_size": values.nbytes}}],
        "outputs": [{"name": "doubled", "parameters": {"binary_data": True}}],
    }).encode()
    response = httpx.post(
        f"{url}/v2/models/toy/infer", content=header + values.tobytes(),
        headers={HEADER_LENGTH: str(len(header))},
    )
    assert response.status_code == 200
    length = int(response.headers[HEADER_LENGTH])
    result = json.loads(response.content[:length])
    assert result["outputs"][0]["parameters"]["binary_data_size"] == 12
    np.testing.assert_array_equal(np.frombuffer(response.content[length:], np.float32), values * 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_json", "message"),
    [
        (_infer_json([1.0], datatype="INT32"), "input 'values' must have datatype FP32, got INT32"),
        (_infer_json([1.0, 2.0], shape=[1, 2]), r"input 'values' must have shape \[-1\]"),
        (_infer_json([1.0] * (MAX_VALUES + 1)), f"the limit is {MAX_VALUES}"),
        ({"inputs": []}, "missing input"),
        ({"inputs": [{"name": "extra", "datatype": "FP32", "shape": [1], "data": [1]}]},
         "unknown input 'extra'"),
    ],
)
def test_infer_bad_input_is_400(url: str, request_json: dict, message: str) -> None:
    response = httpx.post(f"{url}/v2/models/toy/infer", json=request_json)
    assert response.status_code == 400
    assert re.search(message, response.json()["error"])


@pytest.mark.slow
def test_infer_invalid_json_is_400(url: str) -> None:
    response = httpx.post(f"{url}/v2/models/toy/infer", content=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.slow
def test_oversized_body_is_413(url: str) -> None:
    response = httpx.post(f"{url}/v2/models/toy/infer", content=b" " * 5000)
    assert response.status_code == 413
    assert "exceeds the limit of 4096 bytes" in response.json()["error"]


@pytest.mark.slow
def test_metrics_after_infer(url: str) -> None:
    assert httpx.post(f"{url}/v2/models/toy/infer", json=_infer_json([3.0])).status_code == 200
    text = httpx.get(f"{url}/metrics").text
    for name in (
        'harpagon_batch_size_count{module="square"}',
        'harpagon_padding_total{module="scale"}',
        'harpagon_queue_time_seconds_count{module="join"}',
        'harpagon_execution_time_seconds_count{module="total"}',
        'harpagon_request_latency_seconds_count{app="toy"}',
    ):
        assert name in text, name
    assert "harpagon_slo_misses_total" in text


# --- the serve command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing-plan.json", "--app", "toy"], "plan file not found"),
        (["{plan}", "--app", "toy", "--profiles", "p.yaml"], "give --profiles and --hardware together"),
        (["{plan}", "--app", "{app_yaml}"], "needs --adapter module:Class"),
        (["{plan}", "--app", "toy", "--backend", "cloud"], "unknown backend 'cloud'"),
        (["{plan}", "--app", "toy", "--dispatch", "random"], "unknown dispatch mode 'random'"),
        (["{plan}", "--app", "toy", "--address", "10.0.0.1:6379"], "applies only to the ray backend"),
    ],
)
def test_serve_command_rejects_bad_options(tmp_path, arguments: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from harpagon.cli import app

    plan_file = tmp_path / "plan.json"
    toy_plan(20.0)[0].save(plan_file)
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text("name: toy\nrate: 1\nslo_ms: 100\nmodules:\n  - {name: a, profile: p}\n")
    arguments = [a.format(plan=plan_file, app_yaml=app_yaml) for a in arguments]

    result = CliRunner().invoke(app, ["serve", *arguments])

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
