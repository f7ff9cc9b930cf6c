"""The floors every model must clear: the gray input copied to RGB, and OpenCV Telea inpainting."""
from __future__ import annotations

import cv2
import numpy as np


def gray_copy(gray: np.ndarray) -> np.ndarray:
    """The damaged gray input as an RGB image (no colour, hole left as is)."""
    return np.repeat(gray[..., None], 3, axis=-1)


def telea(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV Telea inpainting of the hole (known mask) of a gray or RGB image; returns RGB."""
    m = (mask > 0).astype(np.uint8)
    if image.ndim == 2:
        return gray_copy(cv2.inpaint(image, m, radius, cv2.INPAINT_TELEA))
    return cv2.inpaint(np.ascontiguousarray(image), m, radius, cv2.INPAINT_TELEA)
