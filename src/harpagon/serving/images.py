"""Real test images for the OCR application, from the files bundled with scikit-image.

Only images stored inside the scikit-image package are used (none is downloaded). They are
returned as encoded PNG files, the form a client sends, and include photos without text,
for which the OCR pipeline has no ``cls`` or ``rec`` work.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import skimage.data

__all__ = ["SampleImage", "sample_images", "sample_image", "DEMO_IMAGE_NAMES"]

_DESCRIPTIONS = {
    "page": "scanned book page with printed English text",
    "text": "photo of handwritten formulas on paper, at an angle",
    "coffee": "photo of a cup of coffee",
    "chelsea": "photo of a cat",
    "rocket": "photo of a rocket on its launch pad",
    "astronaut": "portrait photo of an astronaut",
    "camera": "greyscale photo of a man with a camera",
    "coins": "greyscale photo of coins",
}

DEMO_IMAGE_NAMES = ("page", "text", "coffee", "chelsea", "rocket", "astronaut")
"""Image mix of the demo and of the OCR profiles: one text page, one hard text photo and four
photos without printed text."""


@dataclass(frozen=True)
class SampleImage:
    """One test image."""

    name: str
    """Name of the ``skimage.data`` function that loads it."""
    png: bytes
    """The image encoded as a PNG file (8-bit, grey or BGR as OpenCV writes it)."""
    description: str


@cache
def sample_image(name: str) -> SampleImage:
    """Return one bundled image, encoded as PNG.

    Raises
    ------
    KeyError
        If ``name`` is not one of the images listed in this module.
    """
    if name not in _DESCRIPTIONS:
        raise KeyError(f"unknown sample image {name!r}; known: {', '.join(_DESCRIPTIONS)}")
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode sample image {name!r} as PNG")
    return SampleImage(name, encoded.tobytes(), _DESCRIPTIONS[name])


def sample_images(names: tuple[str, ...] | None = None) -> list[SampleImage]:
    """Return the named bundled images (all of them by default), encoded as PNG."""
    return [sample_image(name) for name in (names or tuple(_DESCRIPTIONS))]
