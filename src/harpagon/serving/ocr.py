"""The OCR application: text detection -> angle classification -> text recognition.

The models are the PP-OCR ONNX files shipped inside ``rapidocr-onnxruntime`` 1.4.4
(PP-OCRv4 detection and recognition, PP-OCR mobile v2.0 angle classifier). Pre- and
post-processing are that package's own classes (``DetPreProcess``, ``DBPostProcess``,
``ClsPostProcess``, ``CTCLabelDecode``, its crop and resize helpers), with its default
thresholds read from its ``config.yaml``. This module adds only what batching needs: every
module gets a fixed input shape, so that a batch is one padded array.

Fixed shapes (see ``docs/ocr.md`` for the measurements behind them):

- ``det``: the image is scaled so that its longer side is :data:`DET_INPUT_SIZE` pixels
  (up or down, aspect ratio kept) and zero-padded at the bottom and right to a square. The
  probability map is cropped to the scaled image before box extraction, so boxes come back in
  the pixel coordinates of the original image.
- ``cls``: 3 x 48 x 192, the package's own shape, padded on the right.
- ``rec``: 3 x 48 x :data:`REC_INPUT_WIDTH`, padded on the right. A crop wider than
  ``REC_INPUT_WIDTH / 48`` times its height is squeezed horizontally to fit.

The library's own pipeline differs in three ways: it resizes per image without a fixed shape,
it adds a letterbox around very flat images, and it batches crops sorted by width.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

try:
    import cv2
except ImportError as err:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"OpenCV failed to load: {err}. The non-headless opencv-python wheel needs libGL; "
        "on a machine without it run: pip install --force-reinstall --no-deps "
        "opencv-python-headless"
    ) from err
import rapidocr_onnxruntime
from PIL import Image, UnidentifiedImageError
from rapidocr_onnxruntime.ch_ppocr_cls.text_cls import TextClassifier
from rapidocr_onnxruntime.ch_ppocr_cls.utils import ClsPostProcess
from rapidocr_onnxruntime.ch_ppocr_det.text_detect import TextDetector
from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess, DetPreProcess
from rapidocr_onnxruntime.ch_ppocr_rec.text_recognize import TextRecognizer
from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode
from rapidocr_onnxruntime.main import RapidOCR
from rapidocr_onnxruntime.utils import read_yaml

from harpagon.errors import ConfigError
from harpagon.model.application import Application
from harpagon.model.loading import load_application, shipped_data_path
from harpagon.serving.onnx_runner import OnnxRunner
from harpagon.serving.stages import AppAdapter, RequestState, StageRunner

__all__ = [
    "DET_INPUT_SIZE",
    "CLS_INPUT_SHAPE",
    "REC_INPUT_WIDTH",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "Detection",
    "Classification",
    "Recognition",
    "DetRunner",
    "ClsRunner",
    "RecRunner",
    "OcrAdapter",
    "decode_image",
    "model_path",
]

DET_INPUT_SIZE = 640
"""Side in pixels of the square detection input."""
CLS_INPUT_SHAPE = (3, 48, 192)
"""Channels, height and width of the angle classifier input."""
REC_INPUT_HEIGHT = 48
REC_INPUT_WIDTH = 960
"""Width in pixels of the recogniser input (its height is 48)."""

MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Largest encoded image a request may carry."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest decoded image (width x height) a request may carry."""

_PACKAGE_DIR = Path(rapidocr_onnxruntime.__file__).parent
_MODEL_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}


def model_path(module: str) -> Path:
    """Return the path of the shipped ONNX file of an OCR module (det, cls or rec)."""
    try:
        return _PACKAGE_DIR / "models" / _MODEL_FILES[module]
    except KeyError:
        raise ConfigError(
            f"unknown OCR module {module!r}; expected one of {', '.join(_MODEL_FILES)}"
        ) from None


@cache
def _library_config() -> dict[str, Any]:
    # The thresholds, mean/std and label list of rapidocr-onnxruntime's own pipeline.
    return read_yaml(str(_PACKAGE_DIR / "config.yaml"))


@dataclass(frozen=True)
class Detection:
    """Result of ``det`` for one image."""

    boxes: np.ndarray
    """Text boxes, float32 [N, 4, 2]: four (x, y) corners clockwise from the top left, in
    pixels of the original image, sorted top to bottom and left to right."""
    crops: tuple[np.ndarray, ...]
    """The N boxes cut out of the image and rectified (BGR uint8), the items of ``cls``."""


@dataclass(frozen=True)
class Classification:
    """Result of ``cls`` for one crop."""

    crop: np.ndarray
    """The crop, turned by 180 degrees when the classifier is confident it is upside down."""
    angle: str
    """Predicted orientation label, ``"0"`` or ``"180"``."""
    score: float


@dataclass(frozen=True)
class Recognition:
    """Result of ``rec`` for one crop."""

    text: str
    score: float
    """Mean probability of the decoded characters."""


def _check_batch(items: list[Any], batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if len(items) > batch_size:
        raise ConfigError(f"got {len(items)} items for a batch of size {batch_size}")


class DetRunner(StageRunner):
    """Text detection (DB, PP-OCRv4) on square, zero-padded images of ``input_size`` pixels."""

    def __init__(self, threads: int, input_size: int = DET_INPUT_SIZE) -> None:
        super().__init__(threads)
        if input_size < 32 or input_size % 32:
            raise ConfigError(f"det input_size must be a multiple of 32, got {input_size}")
        config = _library_config()["Det"]
        self.input_size = input_size
        self.session = OnnxRunner(model_path("det"), threads)
        self._normalizer = DetPreProcess(input_size, "max", config["mean"], config["std"])
        self._postprocess = DBPostProcess(
            thresh=config["thresh"],
            box_thresh=config["box_thresh"],
            max_candidates=config["max_candidates"],
            unclip_ratio=config["unclip_ratio"],
            score_mode=config["score_mode"],
            use_dilation=config["use_dilation"],
        )
        # The box filter and ordering methods of these classes use no instance state, so
        # instances built without __init__ (which would load another model) can run them.
        self._detector = object.__new__(TextDetector)
        self._pipeline = object.__new__(RapidOCR)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Scale a BGR image to fit the square input and normalise it.

        Returns the CHW float32 array (not yet padded) and its (height, width) in pixels.
        """
        height, width = image.shape[:2]
        ratio = self.input_size / max(height, width)
        scaled_height = min(self.input_size, max(1, round(height * ratio)))
        scaled_width = min(self.input_size, max(1, round(width * ratio)))
        scaled = cv2.resize(image, (scaled_width, scaled_height))
        tensor = self._normalizer.permute(self._normalizer.normalize(scaled))
        return tensor.astype(np.float32), (scaled_height, scaled_width)

    def run_batch(self, items: list[np.ndarray], batch_size: int) -> list[Detection]:
        _check_batch(items, batch_size)

        # Pre-process into one zero-padded batch, remembering each image's scaled size.
        batch = np.zeros((batch_size, 3, self.input_size, self.input_size), dtype=np.float32)
        scaled_sizes = []
        for index, image in enumerate(items):
            tensor, (height, width) = self.preprocess(image)
            batch[index, :, :height, :width] = tensor
            scaled_sizes.append((height, width))

        probability_maps = self.session.run(batch)[0]

        # Extract boxes from the unpadded part of each map and map them to the original image.
        results = []
        for index, image in enumerate(items):
            height, width = scaled_sizes[index]
            probability = probability_maps[index : index + 1, :, :height, :width]
            original_shape = image.shape[:2]
            boxes, _ = self._postprocess(probability, original_shape)
            boxes = self._detector.filter_tag_det_res(boxes, original_shape)
            if len(boxes) == 0:
                results.append(Detection(np.zeros((0, 4, 2), np.float32), ()))
                continue
            ordered = self._pipeline.sorted_boxes(boxes)
            crops = self._pipeline.get_crop_img_list(image, ordered)
            results.append(Detection(np.asarray(ordered, np.float32), tuple(crops)))
        return results


class ClsRunner(StageRunner):
    """Text angle classification (0 or 180 degrees) on 3 x 48 x 192 inputs."""

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        config = _library_config()["Cls"]
        self.session = OnnxRunner(model_path("cls"), threads)
        self.threshold = float(config["cls_thresh"])
        self._postprocess = ClsPostProcess(config["label_list"])
        # TextClassifier.resize_norm_img reads only the input shape from its instance.
        self._shape_holder = SimpleNamespace(cls_image_shape=list(CLS_INPUT_SHAPE))

    def run_batch(self, items: list[np.ndarray], batch_size: int) -> list[Classification]:
        _check_batch(items, batch_size)
        batch = np.zeros((batch_size, *CLS_INPUT_SHAPE), dtype=np.float32)
        for index, crop in enumerate(items):
            batch[index] = TextClassifier.resize_norm_img(self._shape_holder, crop)

        probabilities = self.session.run(batch)[0][: len(items)]

        results = []
        for crop, (label, score) in zip(items, self._postprocess(probabilities)):
            # The same rule as the library: turn only confident upside-down predictions.
            if "180" in label and score > self.threshold:
                crop = cv2.rotate(crop, cv2.ROTATE_180)
            results.append(Classification(crop, label, float(score)))
        return results


class RecRunner(StageRunner):
    """Text recognition (CTC, PP-OCRv4) on 3 x 48 x ``input_width`` inputs."""

    def __init__(self, threads: int, input_width: int = REC_INPUT_WIDTH) -> None:
        super().__init__(threads)
        if input_width < REC_INPUT_HEIGHT or input_width % 8:
            raise ConfigError(
                f"rec input_width must be a multiple of 8 and >= {REC_INPUT_HEIGHT}, "
                f"got {input_width}"
            )
        self.input_width = input_width
        self.session = OnnxRunner(model_path("rec"), threads)
        characters = self.session.metadata["character"].splitlines()
        self._decoder = CTCLabelDecode(character=characters)
        self._shape_holder = SimpleNamespace(
            rec_image_shape=[3, REC_INPUT_HEIGHT, input_width]
        )

    def run_batch(self, items: list[np.ndarray], batch_size: int) -> list[Recognition]:
        _check_batch(items, batch_size)
        shape = (3, REC_INPUT_HEIGHT, self.input_width)
        batch = np.zeros((batch_size, *shape), dtype=np.float32)
        # With max_wh_ratio = width / height the library resizes to exactly input_width.
        max_ratio = self.input_width / REC_INPUT_HEIGHT
        for index, crop in enumerate(items):
            batch[index] = TextRecognizer.resize_norm_img(self._shape_holder, crop, max_ratio)

        probabilities = self.session.run(batch)[0][: len(items)]
        decoded = self._decoder(probabilities)
        return [Recognition(str(text), float(score)) for text, score, *_ in decoded]


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG or JPEG file into a BGR uint8 image after checking its size limits.

    Raises
    ------
    ConfigError
        If the data is empty, over :data:`MAX_IMAGE_BYTES` or :data:`MAX_IMAGE_PIXELS`, or
        not a decodable image.
    """
    if len(data) == 0:
        raise ConfigError("input 'image' is empty; send the bytes of a PNG or JPEG file")
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(
            f"input 'image' is {len(data)} bytes, over the limit of {MAX_IMAGE_BYTES} bytes; "
            "send a smaller or more compressed image"
        )

    # Read the size from the header first, so a huge image is rejected before decoding.
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except UnidentifiedImageError:
        raise ConfigError("input 'image' is not a decodable image; send a PNG or JPEG file") from None
    except (OSError, Image.DecompressionBombError) as err:
        raise ConfigError(
            f"input 'image' is not a decodable image ({err}); send a PNG or JPEG file"
        ) from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ConfigError(
            f"input 'image' is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS} "
            "pixels; scale it down"
        )

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ConfigError("input 'image' is not a decodable image; send a PNG or JPEG file")
    return image


class OcrAdapter(AppAdapter):
    """Frontend side of the OCR application (modules det, cls, rec).

    v2 input ``image`` (BYTES, shape [1]): an encoded PNG or JPEG file. v2 outputs ``text``
    (BYTES, [N]) and ``boxes`` (FP32, [N, 4, 2]): one entry per detected box whose recognition
    score reaches ``text_score``, top to bottom.

    Parameters
    ----------
    application : Application, optional
        The DAG with its rate and SLO. The shipped ``ocr`` application by default.
    text_score : float, optional
        Minimum recognition score of a returned line. The library's default (0.5) by default.
    """

    MODULES = ("det", "cls", "rec")
    inputs = [{"name": "image", "datatype": "BYTES", "shape": [1]}]
    outputs = [
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "boxes", "datatype": "FP32", "shape": [-1, 4, 2]},
    ]

    def __init__(self, application: Application | None = None, text_score: float | None = None) -> None:
        if application is None:
            application = load_application(shipped_data_path("apps", "ocr.yaml"))
        names = sorted(module.name for module in application.modules)
        if names != sorted(self.MODULES):
            raise ConfigError(
                f"{application.path}: the OCR application needs modules det, cls and rec, "
                f"got {', '.join(names)}"
            )
        self.application = application
        if text_score is None:
            text_score = float(_library_config()["Global"]["text_score"])
        self.text_score = text_score

    def runner_factory(self, module: str) -> tuple[str, str]:
        classes = {"det": "DetRunner", "cls": "ClsRunner", "rec": "RecRunner"}
        if module not in classes:
            raise ConfigError(f"the OCR application has no module {module!r}; modules: det, cls, rec")
        return (__name__, classes[module])

    def decode(self, inputs: dict[str, Any]) -> np.ndarray:
        unknown = sorted(set(inputs) - {"image"})
        if unknown:
            raise ConfigError(f"unknown input(s) {', '.join(unknown)}; the OCR model takes only 'image'")
        if "image" not in inputs:
            raise ConfigError("missing input 'image' (BYTES, shape [1]: an encoded PNG or JPEG file)")
        tensor = inputs["image"]

        datatype = tensor.get("datatype")
        if datatype != "BYTES":
            raise ConfigError(f"input 'image' must have datatype BYTES, got {datatype!r}")
        shape = [int(dim) for dim in tensor.get("shape", [])]
        if shape != [1]:
            raise ConfigError(f"input 'image' must have shape [1], got {shape}")
        data = tensor.get("data")
        values = list(np.asarray(data, dtype=object).reshape(-1)) if data is not None else []
        if len(values) != 1:
            raise ConfigError(f"input 'image' must hold exactly 1 element, got {len(values)}")
        value = values[0]
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ConfigError(
                f"input 'image' must hold the file's bytes, got {type(value).__name__}"
            )
        return decode_image(bytes(value))

    def children(self, module: str, state: RequestState) -> list[Any]:
        if module == "cls":
            detection: Detection = state.results["det"][0]
            return list(detection.crops)
        if module == "rec":
            return [result.crop for result in state.results["cls"]]
        raise ConfigError(f"OCR module {module!r} has no parents; only cls and rec do")

    def respond(self, state: RequestState) -> dict[str, Any]:
        detection: Detection = state.results["det"][0]
        recognitions: list[Recognition] = state.results.get("rec", [])
        keep = [index for index, result in enumerate(recognitions) if result.score >= self.text_score]
        texts = np.array([recognitions[i].text.encode() for i in keep], dtype=object)
        boxes = detection.boxes[keep] if keep else np.zeros((0, 4, 2), np.float32)
        return {"text": texts, "boxes": boxes.astype(np.float32)}

