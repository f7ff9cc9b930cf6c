"""The hole's first fill, before the inpaint network refines it, and the two floors every restoration is measured
against (the gray input copied to RGB; OpenCV Telea inpainting given the true hole).

`prefill(gray, mask, method)`: 'biharmonic' (utils.biharmonic: scikit-image's biharmonic fill at full resolution,
solved fast) or 'telea' (OpenCV, radius 5). The inpainter is trained over one of them (its config's `prefill`) and
records it in its inference settings; weights that record none were trained over Telea.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..core.configs import PREFILLS


def gray_copy(gray: np.ndarray) -> np.ndarray:
    """The damaged gray input as an RGB image (no colour, hole left as is)."""
    return np.repeat(gray[..., None], 3, axis=-1)


def telea(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV Telea inpainting of the hole (known mask) of a gray or RGB image; returns RGB."""
    m = (mask > 0).astype(np.uint8)
    if image.ndim == 2:
        return gray_copy(cv2.inpaint(image, m, radius, cv2.INPAINT_TELEA))
    return cv2.inpaint(np.ascontiguousarray(image), m, radius, cv2.INPAINT_TELEA)


def prefill(gray: np.ndarray, mask: np.ndarray, method: str = "telea") -> np.ndarray:
    """The hole of a uint8 gray image filled by `method` (PREFILLS) at full resolution, never reading the hole's own
    pixels; the pixels outside the hole unchanged."""
    if method == "biharmonic":
        from .biharmonic import biharmonic_fill

        if (mask > 0).all():        # nothing known to continue (a training window inside a large hole): mid-gray
            return np.full_like(gray, 128)
        return biharmonic_fill(gray, mask > 0)
    if method == "telea":
        return cv2.inpaint(gray, (mask > 0).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    raise ValueError(f"pre-fill must be one of {PREFILLS}, got {method!r}")


__all__ = ["gray_copy", "prefill", "telea"]
