"""Stock ``tritonclient.http`` against the server: the toy app, then OCR on a real image."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog, HardwareType
from harpagon.model.plan import Plan
from harpagon.model.profiles import Profile, ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan, validate_plan
from harpagon.serving.server import running_server
from harpagon.serving.toy import ToyAdapter, toy_plan

pytestmark = pytest.mark.slow


def _client(url: str) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(url.removeprefix("http://"), network_timeout=120.0)


def test_tritonclient_toy_binary_and_json() -> None:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=5.0)
    with running_server(plan, ToyAdapter(batch_ms=5.0), profiles=profiles, hardware=hardware) as url:
        client = _client(url)
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("toy")
        metadata = client.get_model_metadata("toy")
        assert metadata["inputs"][0]["name"] == "values"

        values = np.array([1.0, 2.0, 4.0], dtype=np.float32)
        for binary in (True, False):
            tensor = triton_http.InferInput("values", [3], "FP32")
            tensor.set_data_from_numpy(values, binary_data=binary)
            outputs = [
                triton_http.InferRequestedOutput("squares", binary_data=binary),
                triton_http.InferRequestedOutput("total", binary_data=binary),
            ]
            result = client.infer("toy", [tensor], outputs=outputs)
            np.testing.assert_allclose(result.as_numpy("squares"), [4.0, 16.0, 64.0])
            np.testing.assert_allclose(result.as_numpy("total"), [14.0])
            assert result.as_numpy("doubled") is None

        with pytest.raises(InferenceServerException, match="must have datatype FP32, got INT32"):
            wrong = triton_http.InferInput("values", [1], "INT32")
            wrong.set_data_from_numpy(np.array([1], dtype=np.int32))
            client.infer("toy", [wrong])
        client.close()


def _ocr_application() -> Application:
    """Return the OCR DAG at 0.5 req/s with a fan-out factor of 12 boxes per image.

    The dispatcher paces each module at its planned rate, so a burst of k boxes takes
    k / (rate x fan-out) seconds to pass ``cls`` and ``rec``. The high factor keeps the
    6 boxes of the scanned page within about a second.
    """
    modules = (
        Module("det", "ocr_det"),
        Module("cls", "ocr_cls", rate_factor=12.0),
        Module("rec", "ocr_rec", rate_factor=12.0),
    )
    return Application("ocr", 0.5, 60_000.0, modules, (("det", "cls"), ("cls", "rec")))


def _ocr_plan() -> tuple[Plan, ProfileSet, HardwareCatalog]:
    """Return a small valid OCR plan: one single-thread worker per module.

    The profiles are generous guesses (det 1.5 s at batch 1, cls 0.4 s and rec 1 s at
    batch 8), not measurements, so the test does not depend on this machine's speed.
    """
    app = _ocr_application()
    hardware = HardwareCatalog({"cpu-1t": HardwareType("cpu-1t", 0.06, threads=1)})
    guesses = {"det": (1, 1500.0), "cls": (8, 400.0), "rec": (8, 1000.0)}
    profiles = ProfileSet({
        app.module(name).profile: Profile(app.module(name).profile, {"cpu-1t": {size: ms}})
        for name, (size, ms) in guesses.items()
    })
    modules = []
    for name, (size, ms) in guesses.items():
        rate = app.module_rate(name)
        group = make_group(
            hardware="cpu-1t", batch_size=size, workers=1, rate=rate,
            dummy_rate=1000.0 * size / ms - rate, dispatch="batch_aware",
            overhead_ms=app.module(name).overhead_ms, batch_latency_ms=ms,
        )
        module = make_module_plan(app, name, [group], hardware, budget_ms=60_000)
        modules.append(make_module_plan(app, name, [group], hardware, budget_ms=module.latency_ms))
    plan = make_plan(app, modules, hardware, policy="manual", planning_ms=0.0)
    validate_plan(plan, app, profiles, hardware)
    return plan, profiles, hardware


def test_tritonclient_ocr_real_image() -> None:
    from harpagon.serving.images import sample_image
    from harpagon.serving.ocr import OcrAdapter

    plan, profiles, hardware = _ocr_plan()
    adapter = OcrAdapter(application=_ocr_application())
    with running_server(plan, adapter, profiles=profiles, hardware=hardware) as url:
        client = _client(url)
        image = triton_http.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([sample_image("page").png], dtype=object))
        result = client.infer("ocr", [image])

        text = b" ".join(result.as_numpy("text")).decode()
        boxes = result.as_numpy("boxes")
        assert "Region-based" in text or "segmentation" in text, text
        assert boxes.ndim == 3
        assert boxes.shape[1:] == (4, 2)
        assert boxes.shape[0] == len(result.as_numpy("text"))

        garbage = triton_http.InferInput("image", [1], "BYTES")
        garbage.set_data_from_numpy(np.array([b"not an image"], dtype=object))
        with pytest.raises(InferenceServerException, match="not a decodable image"):
            client.infer("ocr", [garbage])
        client.close()
