"""Hole masks given by the user: where an image is damaged, when the mask network should not decide alone.

A hole mask is a one-channel image of the damaged image's size, non-zero where it is damaged: any shape
(scratches, tears, spots, several regions, strokes one pixel wide). `Restorer.restore(image, hole_mask=...)`
takes it as an array; `restore.py --hole-masks DIR` as a PNG per input (`DIR/<input stem>.png`), checked before
any work by `hole_mask_paths` and read by `read_hole_mask`. The images are restored at 512x512 and resized back:
`working_mask` carries a mask to that size so that no damaged pixel, however thin, is left out.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.guards import EXIF_ORIENTATION, DataError, upright

# the PNG modes a hole mask may have: one channel of 1, 8, 16 or 32 bits (read as stored: non-zero = damaged)
MASK_MODES = ("1", "L", "I;16", "I;16B", "I;16L", "I")
MASK_HELP = "a hole mask is a one-channel PNG (mode L or 1) of the image's size, non-zero where the image is damaged"


class HoleMaskError(DataError):
    """Hole masks missing or not matching their images; the message names every file and its problem."""


def hole_mask_array(mask, shape: tuple[int, int], what: str = "hole_mask") -> np.ndarray:
    """`mask` (an array, or anything np.asarray takes: a PIL image, nested lists) as a bool HxW array, True where
    it is non-zero; ValueError naming `what` when it is not a 2-D array (HxWx1 is taken too) of `shape`."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.dtype == object or not (np.issubdtype(m.dtype, np.number) or m.dtype == bool):
        raise ValueError(f"{what}: an array of numbers or booleans is needed (non-zero = damaged), got {m.dtype}")
    if m.ndim != 2:
        raise ValueError(f"{what}: shape {m.shape}; a hole mask is HxW (one channel, non-zero = damaged)")
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"{what}: {m.shape[1]}x{m.shape[0]} (width x height), the image is {shape[1]}x{shape[0]}; "
                         "a hole mask has the image's size")
    return m != 0


def fit_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """A bool mask resized to h x w: a pixel is in the hole when any damaged pixel falls in it (area average > 0
    when shrinking, bilinear > 0 when enlarging), so thin strokes and small spots survive and the hole covers all
    of the damage."""
    if mask.shape == (h, w):
        return mask.copy()
    interp = cv2.INTER_AREA if mask.size > h * w else cv2.INTER_LINEAR
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=interp) > 0


def working_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool mask at size x size, the size the images are restored at (`fit_mask`)."""
    return fit_mask(mask, size, size)


def mask_back(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """A working-size bool mask resized back to an image's h x w (nearest neighbour, as the restoration's own)."""
    if mask.shape == (h, w):
        return mask
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def upright_size(path) -> tuple[int, int] | None:
    """(width, height) of an image as `decode_image` gives it (EXIF rotation applied), from its header only;
    None when the header cannot be read (the file is then reported where it is decoded)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                turned = im.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
            except Exception:       # a malformed EXIF block: decode_image keeps the image as stored, so do we
                turned = False
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return (h, w) if turned else (w, h)


def _header_problem(mask_path: Path, image_size: tuple[int, int] | None) -> str | None:
    """What is wrong with a hole-mask file, from its header: not a PNG, another mode, another size."""
    try:
        with Image.open(mask_path) as im:
            fmt, mode = im.format, im.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"not a readable image ({e})"
    if fmt != "PNG":
        return f"a {fmt} file, not a PNG (a lossy format would mark pixels around every edge)"
    if mode not in MASK_MODES:
        return f"mode {mode}, not one channel"
    size = upright_size(mask_path)
    if image_size is not None and size is not None and size != image_size:
        return f"{size[0]}x{size[1]}, its image is {image_size[0]}x{image_size[1]}"
    return None


def hole_mask_paths(inputs, masks_dir) -> dict[Path, Path]:
    """{input path: its hole mask `<masks_dir>/<input stem>.png`}, every mask checked from its header before any
    work: there, a PNG, one channel, the input's size. Raises HoleMaskError naming every problem file."""
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise HoleMaskError(f"{masks_dir}: hole-mask folder not found")
    inputs = [Path(p) for p in inputs]
    plan, problems = {}, []
    for p in inputs:
        m = masks_dir / f"{p.stem}.png"
        if p.resolve() == m.resolve():
            raise HoleMaskError(f"{masks_dir}: the hole-mask folder is the input folder, so each PNG would be its own "
                                "mask; keep the masks in a folder of their own")
        if not m.is_file():
            problems.append(f"{m}: missing (the hole mask of {p.name})")
            continue
        problem = _header_problem(m, upright_size(p))
        if problem:
            problems.append(f"{m}: {problem}")
        plan[p] = m
    if problems:
        more = [f"(and {len(problems) - 10} more)"] if len(problems) > 10 else []
        raise HoleMaskError(f"{len(problems)} hole mask(s) cannot be used ({MASK_HELP}):\n  "
                            + "\n  ".join(problems[:10] + more))
    return plan


def read_hole_mask(path, shape: tuple[int, int]) -> np.ndarray:
    """The hole mask PNG at `path` as a bool HxW array (True: non-zero, damaged) for an image of `shape` (h, w),
    turned upright by its EXIF orientation as its image is; DataError naming the file when it is not a
    one-channel PNG of that size. (Read as stored: a 16-bit mask's 1 is damaged too.)"""
    path = Path(path)
    problem = _header_problem(path, None) if path.is_file() else "missing"
    if not problem and upright_size(path) != (shape[1], shape[0]):
        w, h = upright_size(path)
        problem = f"{w}x{h}, its image is {shape[1]}x{shape[0]}"
    if problem:
        raise DataError(f"{path}: {problem} ({MASK_HELP})")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(upright(im)) != 0
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: unreadable or truncated image ({e})") from e


__all__ = ["HoleMaskError", "MASK_MODES", "fit_mask", "hole_mask_array", "hole_mask_paths", "mask_back",
           "read_hole_mask", "working_mask"]
