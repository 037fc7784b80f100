"""Tests of the OCR application: request decoding, DAG glue and the batched stage runners."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from harpagon.errors import ConfigError
from harpagon.model.application import Application, Module
from harpagon.serving import ocr
from harpagon.serving.images import DEMO_IMAGE_NAMES, sample_image, sample_images
from harpagon.serving.ocr import (
    Classification,
    ClsRunner,
    Detection,
    DetRunner,
    OcrAdapter,
    Recognition,
    RecRunner,
    decode_image,
)
from harpagon.serving.stages import RequestState, StageRunner, load_runner_class


def image_input(data, datatype="BYTES", shape=(1,)):
    return {"image": {"datatype": datatype, "shape": list(shape), "data": data}}


@pytest.fixture(scope="module")
def adapter():
    return OcrAdapter()


@pytest.fixture(scope="module")
def page_png():
    return sample_image("page").png


# --- decode --------------------------------------------------------------------------------


def test_decode_returns_bgr_pixels(adapter, page_png):
    image = adapter.decode(image_input([page_png]))

    expected = skimage.data.page()
    assert image.shape == (*expected.shape, 3)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[:, :, 0], expected)


def test_decode_colour_image_keeps_channel_order(adapter):
    image = adapter.decode(image_input([sample_image("coffee").png]))

    rgb = skimage.data.coffee()
    np.testing.assert_array_equal(image[:, :, ::-1], rgb)


def test_decode_accepts_numpy_object_array(adapter, page_png):
    data = np.array([page_png], dtype=object)

    image = adapter.decode(image_input(data))

    assert image.shape[:2] == skimage.data.page().shape


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "missing input 'image'"),
        ({"image": {"datatype": "BYTES", "shape": [1], "data": [b"x"]}, "extra": {}}, "unknown input"),
        (image_input([b"abc"], datatype="FP32"), "must have datatype BYTES, got 'FP32'"),
        (image_input([b"abc", b"def"], shape=(2,)), r"must have shape \[1\], got \[2\]"),
        (image_input([b"abc", b"def"]), "must hold exactly 1 element, got 2"),
        (image_input(None), "must hold exactly 1 element, got 0"),
        (image_input(["text"]), "must hold the file's bytes, got str"),
        (image_input([b""]), "input 'image' is empty"),
        (image_input([b"\x89PNG\r\n\x1a\n broken"]), "not a decodable image"),
        (image_input([b"plain text, not an image"]), "not a decodable image"),
    ],
)
def test_decode_rejects_bad_input(adapter, inputs, message):
    with pytest.raises(ConfigError, match=message):
        adapter.decode(inputs)


def test_decode_rejects_too_many_bytes(adapter, page_png, monkeypatch):
    monkeypatch.setattr(ocr, "MAX_IMAGE_BYTES", len(page_png) - 1)

    with pytest.raises(ConfigError, match=f"is {len(page_png)} bytes, over the limit"):
        adapter.decode(image_input([page_png]))


def test_decode_rejects_too_many_pixels(adapter, page_png, monkeypatch):
    height, width = skimage.data.page().shape
    monkeypatch.setattr(ocr, "MAX_IMAGE_PIXELS", height * width - 1)

    with pytest.raises(ConfigError, match=f"is {width}x{height} pixels, over the limit"):
        adapter.decode(image_input([page_png]))


def test_decode_rejects_truncated_png(adapter, page_png):
    with pytest.raises(ConfigError, match="not a decodable image; send a PNG or JPEG file"):
        adapter.decode(image_input([page_png[: len(page_png) // 2]]))


def test_decode_image_reads_jpeg():
    ok, encoded = cv2.imencode(".jpg", np.full((40, 60, 3), 200, np.uint8))
    assert ok

    image = decode_image(encoded.tobytes())

    assert image.shape == (40, 60, 3)


# --- the application and its glue --------------------------------------------------------


def test_shipped_application_is_a_chain(adapter):
    application = adapter.application

    assert application.topological_order == ["det", "cls", "rec"]
    assert application.module("cls").rate_factor == application.module("rec").rate_factor
    assert application.module("det").rate_factor == 1.0


def test_adapter_rejects_other_modules():
    application = Application("other", 1.0, 100.0, (Module("det", "p"), Module("rec", "p")), (("det", "rec"),))

    with pytest.raises(ConfigError, match="needs modules det, cls and rec, got det, rec"):
        OcrAdapter(application)


@pytest.mark.parametrize(("module", "runner_class"), [("det", DetRunner), ("cls", ClsRunner), ("rec", RecRunner)])
def test_runner_factory_names_importable_runner(adapter, module, runner_class):
    path = adapter.runner_factory(module)

    loaded = load_runner_class(path)

    assert loaded is runner_class
    assert issubclass(loaded, StageRunner)


def test_runner_factory_rejects_unknown_module(adapter):
    with pytest.raises(ConfigError, match="has no module 'ner'"):
        adapter.runner_factory("ner")


def make_state(num_boxes, scores):
    crops = tuple(np.full((10, 30 + i, 3), i, np.uint8) for i in range(num_boxes))
    boxes = np.arange(num_boxes * 8, dtype=np.float32).reshape(num_boxes, 4, 2)
    state = RequestState("r1", np.zeros((5, 5, 3), np.uint8))
    state.results["det"] = [Detection(boxes, crops)]
    state.results["cls"] = [Classification(crop, "0", 0.99) for crop in crops]
    state.results["rec"] = [Recognition(f"line {i}", score) for i, score in enumerate(scores)]
    return state


def test_children_fan_out_one_item_per_box(adapter):
    state = make_state(3, [0.9, 0.9, 0.9])

    cls_items = adapter.children("cls", state)
    rec_items = adapter.children("rec", state)

    assert len(cls_items) == 3
    assert [item.shape[1] for item in cls_items] == [30, 31, 32]
    assert len(rec_items) == 3
    assert rec_items[2] is state.results["cls"][2].crop


def test_children_of_source_rejected(adapter):
    with pytest.raises(ConfigError, match="has no parents"):
        adapter.children("det", make_state(1, [0.9]))


def test_respond_drops_low_scores(adapter):
    state = make_state(3, [0.9, 0.2, 0.5])

    outputs = adapter.respond(state)

    assert list(outputs["text"]) == [b"line 0", b"line 2"]
    assert outputs["boxes"].dtype == np.float32
    assert outputs["boxes"].shape == (2, 4, 2)
    np.testing.assert_array_equal(outputs["boxes"][1], state.results["det"][0].boxes[2])


def test_respond_without_boxes(adapter):
    state = make_state(0, [])
    state.results["cls"] = []
    state.results["rec"] = []

    outputs = adapter.respond(state)

    assert outputs["text"].shape == (0,)
    assert outputs["boxes"].shape == (0, 4, 2)


def test_sample_images_are_png_files():
    images = sample_images()

    assert set(DEMO_IMAGE_NAMES) <= {image.name for image in images}
    for image in images:
        assert image.png.startswith(b"\x89PNG\r\n\x1a\n")


# --- stage runners on the real models ------------------------------------------------------


@pytest.fixture(scope="module")
def runners():
    return DetRunner(1), ClsRunner(1), RecRunner(1)


def run_pipeline(adapter, runners, png):
    det, cls, rec = runners
    state = RequestState("r", adapter.decode(image_input([png])))
    state.results["det"] = det.run_batch([state.source_item], 1)
    for module, runner in (("cls", cls), ("rec", rec)):
        items = adapter.children(module, state)
        state.results[module] = runner.run_batch(items, len(items)) if items else []
    return state, adapter.respond(state)


@pytest.mark.slow
def test_page_text_recognised(adapter, runners, page_png):
    state, outputs = run_pipeline(adapter, runners, page_png)

    text = b" ".join(outputs["text"]).decode()
    assert len(state.results["det"][0].boxes) == 6
    assert "segmentation" in text
    assert "markers" in text
    assert "background" in text
    assert "unambiguously" in text
    height, width = skimage.data.page().shape
    assert outputs["boxes"][..., 0].max() <= width
    assert outputs["boxes"][..., 1].max() <= height


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chelsea", "astronaut"])
def test_photo_without_text_has_no_boxes(adapter, runners, name):
    state, outputs = run_pipeline(adapter, runners, sample_image(name).png)

    assert len(state.results["det"][0].crops) == 0
    assert state.results["cls"] == []
    assert outputs["text"].shape == (0,)


@pytest.mark.slow
def test_padding_leaves_results_unchanged(adapter, runners, page_png):
    det, cls, rec = runners
    page = adapter.decode(image_input([page_png]))
    photo = adapter.decode(image_input([sample_image("chelsea").png]))
    reference = det.run_batch([page], 1)[0]
    crops = list(reference.crops[:2])
    reference_texts = [result.text for result in rec.run_batch(crops, 2)]

    for batch_size in (2, 4, 8):
        detections = det.run_batch([page, photo], batch_size)
        texts = [result.text for result in rec.run_batch(crops, batch_size)]
        angles = [result.angle for result in cls.run_batch(crops, batch_size)]
        assert len(detections) == 2
        np.testing.assert_allclose(detections[0].boxes, reference.boxes, atol=1.0)
        assert len(detections[1].boxes) == 0
        assert texts == reference_texts
        assert angles == ["0", "0"]


@pytest.mark.slow
def test_runner_rejects_overfull_batch(runners):
    _, cls, _ = runners
    crop = np.zeros((10, 40, 3), np.uint8)

    with pytest.raises(ConfigError, match="got 3 items for a batch of size 2"):
        cls.run_batch([crop] * 3, 2)


@pytest.mark.slow
def test_classifier_turns_upside_down_crop(runners, adapter, page_png):
    det, cls, _ = runners
    crop = det.run_batch([adapter.decode(image_input([page_png]))], 1)[0].crops[1]
    upside_down = cv2.rotate(crop, cv2.ROTATE_180)

    upright, turned = cls.run_batch([crop, upside_down], 2)

    assert upright.angle == "0"
    assert turned.angle == "180"
    np.testing.assert_array_equal(turned.crop, crop)


def test_runner_input_sizes_validated():
    with pytest.raises(ConfigError, match="multiple of 32, got 100"):
        DetRunner(1, input_size=100)
    with pytest.raises(ConfigError, match="multiple of 8 and >= 48, got 44"):
        RecRunner(1, input_width=44)
