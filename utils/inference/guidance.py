"""Colour guidance from the user: a reference photo whose hues become the colour target, and colour hints.

- **Reference**: `reference_prior(rgb)` is the reference's hue-angle histogram (`utils.hue.angle_histogram`); the
  pipeline's hue remap (`utils.hue.match_hue`) then moves the restoration's hues towards it instead of towards the
  training photos' mean (`Restorer.with_guidance(reference=...)`), its change smoothed along the luminance over
  `REFERENCE_EDGE_RADIUS` px.
- **Hints**: `(x, y, (r, g, b))`, a point in the image's pixels (x: column, y: row, from the top-left corner) and a
  colour. `apply_hints` gives the region each hint belongs to the hint's chroma, on the image's own luminance (which
  stays exact): every hint's reach is an edge-aware geodesic distance on the luminance (scikit-image's
  `MCP_Geometric` over a cost of 1 per pixel plus `EDGE_COST` per unit of luminance change above a texture level),
  so the colour spreads along flat and gently shaded areas and stops at strong edges; it fades out with that
  distance (`REACH` of the image's long side), back to the image's own colours. Several hints combine: each pixel
  takes the colour of the geodesically nearest hint, blended with the next ones over `BLEND` of the long side.
  Fine texture (foliage, fur) slows the spread: a hint there colours less of its region than one on a smooth area.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

from .color import compose_rgb, pil_luma, rgb_to_cbcr_np

__all__ = [
    "HintError",
    "parse_colour",
    "parse_hint",
    "check_hints",
    "scale_hints",
    "edge_cost",
    "geodesic_distances",
    "hint_fields",
    "apply_hints",
    "reference_prior",
]

WORK_SIDE = 512         # distances are computed on the luminance at most this size (long side), then upsampled
EDGE_COST = 3000.0      # extra path cost per unit (0-1) of luminance change per pixel above TEXTURE
TEXTURE = 0.01          # luminance change per pixel (after a blur of BLUR px) below which the image counts as flat
BLUR = 2.0              # Gaussian sigma (px) of the luminance the edges are found on: fine texture counts less
REACH = 0.5             # the hint's weight is exp(-(distance / (REACH * long side)) ** 2)
BLEND = 0.03            # between hints: weights exp(-(distance - nearest) / (BLEND * long side))
# with a reference, the hue remap's change is smoothed along the luminance over at most this radius (px at 512), not
# the stored 32: a crop's own truth as its reference then gives a hue term of about 0.8 on held-out crops, against
# 0.73 at 32 and 0.9 without smoothing, which leaves coloured specks along edges (research/reference_hue.py)
REFERENCE_EDGE_RADIUS = 8


class HintError(ValueError):
    """A hint that cannot be used; the message names the hint and the problem."""


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#RRGGBB' (or 'RRGGBB') -> (r, g, b)."""
    m = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if not m:
        raise HintError(f"colour {text!r}: expected #RRGGBB, e.g. #c03020")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def parse_hint(text: str) -> tuple[float, float, tuple[int, int, int]]:
    """The command line's form 'X,Y,#RRGGBB' (pixels from the top-left corner) -> (x, y, (r, g, b))."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise HintError(f"hint {text!r}: expected X,Y,#RRGGBB (e.g. 120,340,#c03020)")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise HintError(f"hint {text!r}: X and Y must be numbers (pixels from the top-left corner)") from None
    try:
        colour = parse_colour(parts[2])
    except HintError as e:
        raise HintError(f"hint {text!r}: {e}") from None
    return x, y, colour


def check_hints(hints, width: int | None = None, height: int | None = None) -> list[tuple[float, float, tuple]]:
    """Hints as given (a sequence of (x, y, (r, g, b)); a '#RRGGBB' string is taken for the colour too) -> a list of
    (float, float, (int, int, int)), or HintError naming the hint (by its number, from 1) and its problem: not a
    point and a colour, a coordinate that is not a finite number of 0 or more, a colour that is not three integers
    0-255, and with `width` and `height`, a point outside that image."""
    if hints is None:
        return []
    if isinstance(hints, (str, bytes)) or not isinstance(hints, Sequence):
        raise HintError(f"hints must be a list of (x, y, (r, g, b)), got {type(hints).__name__}")
    out = []
    for i, h in enumerate(hints, 1):
        if isinstance(h, (str, bytes)) or not isinstance(h, Sequence) or len(h) != 3:
            raise HintError(f"hint {i}: expected (x, y, (r, g, b)), got {h!r}")
        x, y, colour = h
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise HintError(f"hint {i}: x and y must be numbers, got {h[0]!r}, {h[1]!r}") from None
        if not (np.isfinite(x) and np.isfinite(y)) or x < 0 or y < 0:
            raise HintError(f"hint {i}: x and y must be finite and 0 or more (pixels from the top-left corner), "
                            f"got {x:g}, {y:g}")
        if width is not None and height is not None and not (x <= width - 1 and y <= height - 1):
            raise HintError(f"hint {i}: ({x:g}, {y:g}) is outside the image ({width}x{height}: x from 0 to "
                            f"{width - 1}, y from 0 to {height - 1})")
        if isinstance(colour, str):
            try:
                colour = parse_colour(colour)
            except HintError as e:
                raise HintError(f"hint {i}: {e}") from None
        if (isinstance(colour, bytes) or not isinstance(colour, (Sequence, np.ndarray)) or len(colour) != 3
                or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255
                           for c in colour)):
            raise HintError(f"hint {i}: the colour must be (r, g, b), three integers 0-255, got {colour!r}")
        out.append((x, y, tuple(int(c) for c in colour)))
    return out


def scale_hints(hints, from_size: tuple[int, int], to_size: tuple[int, int]) -> list:
    """Hints on an image of (height, width) `from_size` -> the same points on the image resized to `to_size`."""
    (h0, w0), (h1, w1) = from_size, to_size
    return [((x + 0.5) * w1 / w0 - 0.5, (y + 0.5) * h1 / h0 - 0.5, c) for x, y, c in hints]


def edge_cost(luma: np.ndarray) -> np.ndarray:
    """The cost of a step through each pixel (float HxW): 1, plus EDGE_COST per unit of luminance change per
    pixel above TEXTURE (on the luminance blurred by BLUR px, 0-1)."""
    y = cv2.GaussianBlur(luma.astype(np.float32) / 255.0, (0, 0), BLUR)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return 1.0 + EDGE_COST * np.maximum(np.hypot(gx, gy) - TEXTURE, 0.0)


def geodesic_distances(luma: np.ndarray, points) -> np.ndarray:
    """[N,H,W] edge-aware geodesic distance (px of travel) from each of N (x, y) points over `luma` (uint8 HxW)."""
    from skimage.graph import MCP_Geometric

    cost = edge_cost(luma)
    h, w = luma.shape
    out = np.empty((len(points), h, w), np.float32)
    for i, (x, y) in enumerate(points):
        start = (int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1)))
        out[i], _ = MCP_Geometric(cost).find_costs([start])
    return out


def hint_fields(luma: np.ndarray, hints) -> tuple[np.ndarray, np.ndarray]:
    """(weight HxW in 0-1: how much of each pixel's chroma comes from the hints, chroma HxWx2: the hints' Cb/Cr
    there) for checked hints on uint8 HxW `luma`. Computed at most WORK_SIDE px on the long side, upsampled."""
    h, w = luma.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = luma
    if scale < 1.0:
        small = cv2.resize(luma, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape
    pts = [((x + 0.5) * sw / w - 0.5, (y + 0.5) * sh / h - 0.5) for x, y, _ in hints]
    d = geodesic_distances(small, pts)
    side = max(sh, sw)
    nearest = d.min(0)
    weight = np.exp(-(nearest / (REACH * side)) ** 2)
    share = np.exp(-(d - nearest[None]) / (BLEND * side))
    share /= share.sum(0, keepdims=True)
    colours = np.stack([rgb_to_cbcr_np(np.array([[c]], np.uint8))[0, 0] for _, _, c in hints])   # [N,2]
    chroma = np.einsum("nhw,nc->hwc", share, colours)
    if (sh, sw) != (h, w):
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    return weight.astype(np.float32), chroma.astype(np.float32)


def apply_hints(rgb: np.ndarray, hints) -> np.ndarray:
    """uint8 HxWx3 RGB with each hint's chroma spread over the region it belongs to (`hint_fields`); the PIL luma
    of every pixel is kept exactly. No hints: `rgb` itself."""
    h, w = rgb.shape[:2]
    hints = check_hints(hints, w, h)
    if not hints:
        return rgb
    luma = pil_luma(rgb).astype(np.uint8)
    weight, chroma = hint_fields(luma, hints)
    own = rgb_to_cbcr_np(rgb)
    mixed = own + weight[..., None] * (chroma - own)
    return compose_rgb(luma, mixed + 0.5)


def reference_prior(reference: np.ndarray, name: str = "the reference") -> list:
    """A reference photo (uint8 HxWx3 RGB, or RGBA: the alpha is dropped) -> its hue-angle histogram, the remap's
    target (`utils.hue.HueConfig.prior`); ValueError naming `name` for an image that is not RGB or has no colour."""
    from .hue import BINS, MIN_CHROMA, chroma_polar

    ref = np.asarray(reference)
    if ref.dtype != np.uint8:
        raise ValueError(f"{name}: must be a uint8 RGB image (0-255), got {ref.dtype}")
    if ref.ndim == 3 and ref.shape[2] == 4:
        ref = ref[..., :3]
    if ref.ndim != 3 or ref.shape[2] != 3 or min(ref.shape[:2]) < 1:
        raise ValueError(f"{name}: must be an HxWx3 RGB colour photo, got shape {ref.shape}")
    theta, radius = chroma_polar(ref)
    coloured = radius > MIN_CHROMA
    if coloured.mean() < 0.01:
        raise ValueError(f"{name}: has no colour (gray or almost so): there are no hues to take from it")
    hist, _ = np.histogram(theta[coloured], BINS, (-np.pi, np.pi))
    return list(hist / hist.sum())
