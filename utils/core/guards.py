"""Checks made before any work starts, so that bad input fails early, by name, and nothing is overwritten.

- `decode_image`: open an image with a pixel limit checked from its header (no decompression bomb is
  decoded), turned upright by its EXIF orientation (a phone photo) and 16-bit / 32-bit modes scaled to 8 bits
  (PIL's own conversion clips them to white or black).
- `plan_outputs`: the output paths of a batch of inputs, refused when two inputs would write the same output
  (`photo.png` and `photo.jpg`), when an output would replace an input or another output (`restore.py DIR
  DIR`, `--masks` = the output folder), or when an output folder or zip path cannot be written.
- `check_writable_dir`, `check_zip_path`: the same for a single folder or zip file.
- `read_zip_member`: a zip member read with its size checked against a cap before and while reading (a
  zip's declared sizes may lie).
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class DataError(ValueError):
    """A problem with an input file or table; the message names the file (utils.images re-exports it)."""


# 100 megapixels: 10000x10000; a larger image is refused before it is decoded (PIL warns at 89 MP and
# refuses at 179 MP with an exception most callers did not catch)
MAX_IMAGE_PIXELS = 100_000_000


class OutputError(ValueError):
    """An output path that cannot or must not be written; the message names the path and the problem."""


@contextlib.contextmanager
def _no_pil_size_warning():
    """The size is checked in decode_image with our own message: PIL's warning from 89 MP on
    (DecompressionBombWarning, printed with a source line) would only repeat or contradict it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def decode_image(source, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None) -> Image.Image:
    """Open and decode an image (a file path, or bytes named `name`) as an 8-bit PIL image (modes L, RGB,
    RGBA, LA, P, 1, CMYK, YCbCr...), turned upright by its EXIF orientation tag when it has one (phone and camera
    photos are stored sideways with a tag saying so; viewers and browsers rotate them, so must we).

    Raises DataError naming the file when it is missing, unreadable, truncated, or larger than `max_pixels`
    (checked from the header, before decoding). 16-bit and 32-bit integer images (I;16, I;16B, I) are scaled
    from their full range to 0-255 and float images (F) from 0-1 (or their own range when above 1)."""
    if isinstance(source, (bytes, bytearray)):
        path, fp = name or "image", io.BytesIO(source)
    else:
        path = fp = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: file not found")
    try:
        with _no_pil_size_warning(), Image.open(fp) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DataError(f"{path}: image too large, {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the limit of "
                                f"{max_pixels / 1e6:.0f} MP; downscale it first")
            im.load()
            return _to_8bit(upright(im), path)
    except Image.DecompressionBombError as e:   # PIL refuses some sizes at open, before the check above
        raise DataError(f"{path}: image too large to decode safely, over the limit of {max_pixels / 1e6:.0f} MP "
                        f"({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: unreadable or truncated image ({e})") from e


EXIF_ORIENTATION = 0x0112     # 1: upright; 2-8: mirrored and/or rotated (ImageOps.exif_transpose undoes it)


def upright(im: Image.Image) -> Image.Image:
    """`im` rotated/mirrored as its EXIF orientation tag says (the tag removed), or `im` itself when it has no tag,
    the tag says upright, or the EXIF block cannot be parsed (the pixels are still good)."""
    try:
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:       # a malformed EXIF block: PIL raises various errors; the image itself decoded fine
        return im
    if orientation in (None, 1):
        return im
    return ImageOps.exif_transpose(im)


def _to_8bit(im: Image.Image, path) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else float(a.max())
        return Image.fromarray(np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        if not np.isfinite(a).all():
            raise DataError(f"{path}: float image with NaN or infinite pixels")
        top = max(1.0, float(a.max()))
        return Image.fromarray(np.clip(np.round(np.clip(a, 0, None) * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGB;16", "RGBA;16", "RGBX"):
        return im.convert("RGB")
    return im.copy()


def decoded_mode(mode: str) -> str:
    """The mode `decode_image` gives an image whose header says `mode` (16/32-bit and float gray -> L, 16-bit colour
    -> RGB, any other mode kept): what a header-only check compares with the mode a reader expects."""
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return "L"
    if mode in ("RGB;16", "RGBA;16", "RGBX"):
        return "RGB"
    return mode


def check_writable_dir(folder, what: str = "output folder") -> Path:
    """`folder` exists as a writable folder (created if missing), checked by writing a probe file in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: the {what} is an existing file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{folder}: the {what} cannot be written ({e.strerror or e})") from e
    return folder


def check_zip_path(zip_path) -> Path:
    """A zip path that can be written: not a folder, in a writable folder."""
    zip_path = Path(zip_path)
    if zip_path.is_dir():
        raise OutputError(f"{zip_path}: --zip is a folder; give a file name such as {zip_path / 'submission.zip'}")
    if zip_path.suffix.lower() != ".zip":
        raise OutputError(f"{zip_path}: a submission zip's name must end in .zip")
    check_writable_dir(zip_path.parent if str(zip_path.parent) else Path("."), "zip's folder")
    return zip_path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def plan_outputs(inputs, out_dir, masks_dir=None, zip_path=None, suffix: str = ".png", other_inputs=()) -> dict:
    """{input path: output path} for writing `<out_dir>/<input stem>.png`, after checking, before any work:
    no two inputs share an output name; no output (restoration, mask or zip) is an input file (or one of
    `other_inputs`, e.g. the hole masks read with the inputs) or another output, or a folder already there; the
    folders and the zip path can be written. Raises OutputError naming the paths."""
    inputs = [Path(p) for p in inputs]
    out_dir = Path(out_dir)
    by_name: dict[str, Path] = {}
    clashes = []
    for p in inputs:
        name = p.stem + suffix
        if name in by_name:
            clashes.append(f"{by_name[name].name} and {p.name} -> {name}")
        else:
            by_name[name] = p
    if clashes:
        raise OutputError(f"{out_dir}: inputs that would write the same output file (rename one of each pair): "
                          + "; ".join(clashes[:5]) + (f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""))
    read = inputs + [Path(p) for p in other_inputs]
    resolved_inputs = {p.resolve() for p in read}
    if masks_dir is not None and _same(Path(masks_dir), out_dir):
        raise OutputError(f"{masks_dir}: the masks folder is the output folder; the masks would overwrite the "
                          "restorations (give another folder)")
    plan = {p: out_dir / n for n, p in by_name.items()}
    targets = list(plan.values()) + ([Path(masks_dir) / n for n in by_name] if masks_dir is not None else [])
    if zip_path is not None:
        targets.append(Path(zip_path))
    for t in targets:
        if t.resolve() in resolved_inputs or any(_same(t, i) for i in read if i.name == t.name):
            raise OutputError(f"{t}: this output would overwrite an input file; write the outputs to another "
                              "folder (inputs are never modified)")
    if zip_path is not None and Path(zip_path).is_dir():
        check_zip_path(zip_path)
    blocked = [t for t in targets if t.is_dir()]
    if blocked:     # the write would fail on that image only, at the end of the run
        more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
        raise OutputError(f"{blocked[0]}: a folder is where this output file would be written{more}; move or "
                          "rename it, or give another output folder")
    created = [d for d in (out_dir, masks_dir, zip_path and Path(zip_path).parent)
               if d is not None and not Path(d).exists()]
    try:
        check_writable_dir(out_dir)
        if masks_dir is not None:
            check_writable_dir(masks_dir, "masks folder")
        if zip_path is not None:
            check_zip_path(zip_path)
    except OutputError:
        for d in created:  # a refused run leaves nothing behind, not even the folders it checked
            try:
                Path(d).rmdir()
            except OSError:
                pass
        raise
    return plan


def read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, source="zip") -> bytes:
    """The bytes of one member, refused (DataError naming the zip and member) when its declared size or the
    bytes actually inflated exceed `max_bytes`: nothing bigger than the cap is ever held in memory."""
    if info.file_size > max_bytes:
        raise DataError(
            f"{source}: {info.filename} is {info.file_size / 2**20:.1f} MiB uncompressed, over the "
            f"limit of {max_bytes / 2**20:.0f} MiB per file"
        )
    with zf.open(info) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(
            f"{source}: {info.filename} inflates to more than {max_bytes / 2**20:.0f} MiB (its header "
            "says less); refused"
        )
    return data


__all__ = [
    "EXIF_ORIENTATION",
    "MAX_IMAGE_PIXELS",
    "OutputError",
    "check_writable_dir",
    "check_zip_path",
    "decode_image",
    "decoded_mode",
    "plan_outputs",
    "read_zip_member",
    "upright",
]
