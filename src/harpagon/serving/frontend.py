"""The HTTP frontend: KServe v2 / Open Inference Protocol on FastAPI, plus Prometheus metrics.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{model}``,
``/v2/models/{model}/ready``, ``POST /v2/models/{model}/infer`` (also under
``/versions/{version}``) and ``GET /metrics``. The one model is the served application.

Tensors travel as JSON, ``{"name", "datatype", "shape", "data"}`` with BYTES elements as
UTF-8 strings and image files base64-encoded (see :func:`_json_string_to_bytes`). Or they
travel with the binary tensor data extension. There the ``Inference-Header-Content-Length``
header gives the length of the JSON header, and each input with a ``binary_data_size``
parameter takes that many bytes of the rest of the body, in input order. A BYTES tensor is
each element's 4-byte little-endian length followed by its bytes. Outputs are binary when
the request sets ``parameters.binary_data_output`` or an output's ``parameters.binary_data``,
as ``tritonclient.http`` does by default. This follows
the wire format of ``tritonclient.http`` 2.73 (``_utils.py``, ``_infer_result.py``).

Errors use the v2 shape ``{"error": "..."}``: 400 for a bad request, 404 for an unknown
model, 413 for a body above the size limit, 500 when a batch failed, 503 when the server is
overloaded, draining or not ready, 504 when a request timed out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from harpagon import __version__
from harpagon.errors import ConfigError, OverloadedError
from harpagon.serving.metrics import CONTENT_TYPE_LATEST
from harpagon.serving.server import RequestTimedOut, ServingRuntime
from harpagon.serving.workers import BatchError, WorkerUnavailable

__all__ = ["DATATYPES", "create_app", "decode_infer_request", "encode_infer_response"]

logger = logging.getLogger(__name__)

HEADER_LENGTH = "Inference-Header-Content-Length"

DATATYPES: dict[str, np.dtype[Any] | None] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": None,
}
"""v2 datatypes and their numpy dtypes (None for BYTES, held as a list of ``bytes``)."""


class _RequestError(Exception):
    """A request the frontend rejects with HTTP ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# --- decoding requests ---------------------------------------------------------------------


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for element in data:
        flat.extend(_flatten(element))
    return flat


def _decode_bytes_tensor(raw: bytes, name: str) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ConfigError(f"input {name!r}: truncated BYTES element length at byte {offset}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ConfigError(
                f"input {name!r}: BYTES element of {length} bytes runs past the end of its data"
            )
        elements.append(bytes(raw[offset:offset + length]))
        offset += length
    return elements


def _encode_bytes_tensor(elements: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


_IMAGE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF",
)


def _json_string_to_bytes(element: str, name: str, forced_base64: bool) -> bytes:
    # A JSON string cannot carry an image file's raw bytes, so an image arrives base64-encoded:
    # always with the input parameter content_encoding=base64, or when the string is valid
    # base64 whose decoded bytes start with a PNG, JPEG, GIF, BMP, TIFF or WebP signature.
    # Any other string is passed on as its UTF-8 bytes.
    try:
        decoded = base64.b64decode(element, validate=True)
    except (binascii.Error, ValueError):
        if forced_base64:
            raise ConfigError(
                f"input {name!r}: content_encoding is base64, but the data is not valid base64"
            ) from None
        return element.encode("utf-8")
    if forced_base64 or decoded.startswith(_IMAGE_SIGNATURES):
        return decoded
    return element.encode("utf-8")


def _parse_shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(d, int) and d >= 0 for d in value):
        raise ConfigError(f"input {name!r}: 'shape' must be a list of integers >= 0, got {value!r}")
    return value


def _decode_input(spec: dict[str, Any], binary: memoryview, offset: int) -> tuple[str, dict[str, Any], int]:
    # Returns (name, {"datatype", "shape", "data"}, new offset into the binary section).
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ConfigError(f"each input must be an object with a string 'name', got {spec!r}"[:300])
    name = spec["name"]
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise ConfigError(
            f"input {name!r}: unsupported datatype {datatype!r}; supported: {', '.join(DATATYPES)}"
        )
    shape = _parse_shape(spec.get("shape"), name)
    count = int(np.prod(shape)) if shape else 1
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size")

    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise ConfigError(
                f"input {name!r}: binary_data_size {size!r} does not fit the {len(binary) - offset} "
                "bytes left in the request body"
            )
        raw = bytes(binary[offset:offset + size])
        offset += size
        if datatype == "BYTES":
            data: Any = _decode_bytes_tensor(raw, name)
        else:
            dtype = DATATYPES[datatype]
            assert dtype is not None
            if size != count * dtype.itemsize:
                raise ConfigError(
                    f"input {name!r}: {size} bytes of binary data, but shape {shape} of {datatype} "
                    f"needs {count * dtype.itemsize}"
                )
            data = np.frombuffer(raw, dtype=dtype).copy()
    else:
        if "data" not in spec:
            raise ConfigError(f"input {name!r}: no 'data' and no binary_data_size parameter")
        flat = _flatten(spec["data"])
        if datatype == "BYTES":
            if not all(isinstance(element, str) for element in flat):
                raise ConfigError(f"input {name!r}: BYTES data in JSON must be strings")
            forced = parameters.get("content_encoding") == "base64"
            data = [_json_string_to_bytes(element, name, forced) for element in flat]
        else:
            try:
                data = np.asarray(flat, dtype=DATATYPES[datatype])
            except (TypeError, ValueError, OverflowError) as err:
                raise ConfigError(f"input {name!r}: data is not valid {datatype}: {err}") from None
    if len(data) != count:
        raise ConfigError(
            f"input {name!r}: shape {shape} has {count} elements, but the data has {len(data)}"
        )
    return name, {"datatype": datatype, "shape": shape, "data": data}, offset


def decode_infer_request(body: bytes, header_length: int | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Parse a v2 infer request body into ``(request JSON, inputs)``.

    ``inputs`` maps each input name to ``{"datatype", "shape", "data"}``; ``data`` is a flat
    numpy array, or a list of ``bytes`` for BYTES.

    Raises
    ------
    ConfigError
        Naming the part of the request that is malformed.
    """
    if header_length is None:
        header_length = len(body)
    if not 0 <= header_length <= len(body):
        raise ConfigError(
            f"{HEADER_LENGTH} is {header_length}, but the body has {len(body)} bytes"
        )
    try:
        request = json.loads(body[:header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"request body is not valid JSON: {err}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ConfigError("request must be a JSON object with an 'inputs' list")

    binary = memoryview(body)[header_length:]
    inputs: dict[str, dict[str, Any]] = {}
    offset = 0
    for spec in request["inputs"]:
        name, tensor, offset = _decode_input(spec, binary, offset)
        if name in inputs:
            raise ConfigError(f"input {name!r} appears twice")
        inputs[name] = tensor
    if offset != len(binary):
        raise ConfigError(
            f"request body has {len(binary) - offset} bytes of binary data that no input claims"
        )
    return request, inputs


# --- encoding responses ----------------------------------------------------------------------


def _as_tensor(value: Any, datatype: str | None) -> tuple[str, list[int], Any]:
    # Returns (datatype, shape, numpy array or list of bytes).
    array = np.asarray(value, dtype=object if datatype == "BYTES" else None)
    if datatype is None:
        if array.dtype.kind in "OUS":
            datatype = "BYTES"
        else:
            datatype = next(
                (name for name, dtype in DATATYPES.items() if dtype == array.dtype), "FP64"
            )
    shape = list(array.shape)
    if datatype == "BYTES":
        flat = [
            element if isinstance(element, bytes) else str(element).encode("utf-8")
            for element in array.reshape(-1).tolist()
        ]
        return datatype, shape, flat
    dtype = DATATYPES[datatype]
    return datatype, shape, array.astype(dtype).reshape(-1)


def encode_infer_response(
    model_name: str,
    outputs: dict[str, Any],
    request: dict[str, Any],
    datatypes: dict[str, str],
) -> tuple[bytes, int | None]:
    """Build the v2 response body; returns ``(body, JSON header length or None)``.

    ``datatypes`` gives the declared datatype of each output (others are inferred from the
    values). Only outputs named in the request's ``outputs`` list are returned, if it has one.

    Raises
    ------
    ConfigError
        If the request names an output the application does not produce.
    """
    parameters = request.get("parameters") or {}
    binary_default = bool(parameters.get("binary_data_output", False))
    requested = request.get("outputs")
    if requested:
        selected = []
        for spec in requested:
            name = spec.get("name") if isinstance(spec, dict) else None
            if name not in outputs:
                raise ConfigError(f"unknown output {name!r}; outputs: {', '.join(outputs)}")
            binary = (spec.get("parameters") or {}).get("binary_data", binary_default)
            selected.append((name, bool(binary)))
    else:
        selected = [(name, binary_default) for name in outputs]

    entries, blobs = [], []
    for name, binary in selected:
        datatype, shape, data = _as_tensor(outputs[name], datatypes.get(name))
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            blob = _encode_bytes_tensor(data) if datatype == "BYTES" else data.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif datatype == "BYTES":
            entry["data"] = [element.decode("utf-8", errors="replace") for element in data]
        else:
            entry["data"] = data.tolist()
        entries.append(entry)

    response: dict[str, Any] = {"model_name": model_name, "model_version": "1", "outputs": entries}
    if "id" in request:
        response["id"] = request["id"]
    header = json.dumps(response).encode("utf-8")
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


# --- the app --------------------------------------------------------------------------------


def _tensor_specs(adapter: Any, attribute: str) -> list[dict[str, Any]]:
    # The adapter may declare `inputs` / `outputs` as dicts or objects with name, datatype, shape.
    specs = []
    for spec in getattr(adapter, attribute, None) or []:
        if not isinstance(spec, dict):
            spec = {key: getattr(spec, key) for key in ("name", "datatype", "shape", "optional") if hasattr(spec, key)}
        specs.append({
            "name": spec["name"], "datatype": spec["datatype"], "shape": list(spec["shape"]),
            "optional": bool(spec.get("optional", False)),
        })
    return specs


def _check_inputs(inputs: dict[str, dict[str, Any]], specs: list[dict[str, Any]]) -> None:
    # Checks names, datatypes and shapes against the declared inputs; -1 matches any size.
    if not specs:
        return
    declared = {spec["name"]: spec for spec in specs}
    for name, tensor in inputs.items():
        spec = declared.get(name)
        if spec is None:
            raise ConfigError(f"unknown input {name!r}; inputs: {', '.join(declared)}")
        if tensor["datatype"] != spec["datatype"]:
            raise ConfigError(
                f"input {name!r} must have datatype {spec['datatype']}, got {tensor['datatype']}"
            )
        shape, expected = tensor["shape"], spec["shape"]
        if len(shape) != len(expected) or any(e not in (-1, s) for s, e in zip(shape, expected)):
            raise ConfigError(f"input {name!r} must have shape {expected} (-1: any size), got {shape}")
    missing = [name for name in declared if name not in inputs and not declared[name].get("optional")]
    if missing:
        raise ConfigError(f"missing input(s): {', '.join(missing)}")


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _RequestError(413, f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise _RequestError(413, f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(runtime: ServingRuntime) -> FastAPI:
    """Return the FastAPI app of ``runtime``; its lifespan starts and stops the runtime."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Harpagon", version=__version__, lifespan=lifespan)
    model_name = runtime.model_name
    input_specs = _tensor_specs(runtime.adapter, "inputs")
    output_specs = _tensor_specs(runtime.adapter, "outputs")
    output_datatypes = {spec["name"]: spec["datatype"] for spec in output_specs}

    def check_model(name: str) -> None:
        if name != model_name:
            raise _RequestError(404, f"unknown model {name!r}; known models: {model_name}")

    @app.exception_handler(_RequestError)
    async def request_error(_: Request, err: _RequestError) -> JSONResponse:
        return _error(err.status, err.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "harpagon", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        is_ready = runtime.ready()
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str = "1") -> dict[str, Any]:
        check_model(name)
        return {
            "name": model_name,
            "versions": ["1"],
            "platform": "harpagon_pipeline",
            "inputs": [{key: spec[key] for key in ("name", "datatype", "shape")} for spec in input_specs],
            "outputs": [{key: spec[key] for key in ("name", "datatype", "shape")} for spec in output_specs],
            "parameters": {
                "slo_ms": runtime.plan.slo_ms,
                "rate": runtime.plan.rate,
                "policy": runtime.plan.policy,
                "plan_latency_ms": runtime.plan.latency_ms,
                "cost_per_hour": runtime.plan.cost_per_hour,
            },
        }

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str = "1") -> Response:
        check_model(name)
        is_ready = runtime.ready()
        return JSONResponse({"name": model_name, "ready": is_ready}, status_code=200 if is_ready else 503)

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str = "1") -> Response:
        check_model(name)
        return await _infer(runtime, request, input_specs, output_datatypes)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


async def _infer(
    runtime: ServingRuntime,
    request: Request,
    input_specs: list[dict[str, Any]],
    output_datatypes: dict[str, str],
) -> Response:
    model_name = runtime.model_name
    status = 200
    try:
        body = await _read_body(request, runtime.options.max_body_bytes)
        header = request.headers.get(HEADER_LENGTH)
        if header is not None and not header.isdigit():
            raise ConfigError(f"{HEADER_LENGTH} must be a non-negative integer, got {header!r}")
        request_json, inputs = decode_infer_request(body, None if header is None else int(header))
        _check_inputs(inputs, input_specs)
        outputs = await runtime.infer(inputs)
        payload, header_length = encode_infer_response(model_name, outputs, request_json, output_datatypes)
    except _RequestError as err:
        status, message = err.status, err.message
    except ConfigError as err:
        status, message = 400, str(err)
    except OverloadedError as err:
        status, message = 503, str(err)
    except WorkerUnavailable as err:
        runtime.metrics.rejected.labels(model_name, "worker_unavailable").inc()
        status, message = 503, str(err)
    except BatchError as err:
        status, message = 500, f"inference failed: {err}"
    except RequestTimedOut as err:
        status, message = 504, str(err)
    except Exception as err:  # noqa: BLE001 - answered as 500 and logged with its traceback
        logger.exception("inference request failed")
        status, message = 500, f"inference failed: {type(err).__name__}: {err}"
    if status == 503 or 400 <= status < 500:
        # Rejections are counted in the metrics and summarised in the log every few seconds.
        runtime.rejection_log.note(status, message)
    if status == 503:
        logger.debug("request rejected with 503: %s", message)
        return _error(status, message)
    if status != 200:
        runtime.metrics.failed.labels(model_name, str(status)).inc()
        # Failed batches are logged once per batch by the pipeline, bad requests only at DEBUG.
        level = logging.WARNING if status == 504 else logging.DEBUG
        logger.log(level, "inference request failed with HTTP %d: %s", status, message)
        return _error(status, message)
    if header_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(header_length)},
    )
