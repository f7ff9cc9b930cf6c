"""The restoration app (Gradio), over the same pipeline as restore.py and notebook 05.

    python app.py [--weights DIR] [--host 127.0.0.1] [--port 7860] [--device auto|cpu|cuda] [--backend torch|onnx]
                  [--colour natural|score]

--backend (default: $IMAGE_RESTORE_BACKEND, else torch): onnx runs the networks in onnxruntime on the CPU.
--colour: the Colours choice the page starts with (natural, the default: the colour net's own hues, pale tints faded
to gray; score: the hue
remap chosen for the competition's score, which can paint hues a person would not). Every tab uses the choice.

Runs on localhost, offline. Tabs: restore a damaged grayscale image (upload or a sample, shown as images, with an
optional ground truth for the score; the detected hole is shown in an image editor where the user paints the
damage and erases false detections, and chooses which hole is filled: painted, detected or both; colour guidance:
a reference photo whose hues to aim at, and colour hints placed by clicking on the image); damage a colour
photo on the spot with the competition's polygon generator and restore it (its central square, scaled to
512x512); batch mode (images or zips in; out, a zip of the restored photos at their own sizes, or a validated
submission zip in score colours, with previews). Downloads are named after the input (`photo.png` ->
`photo_restored.png`, `photos.zip` -> `photos_restored.zip`); a photo's EXIF orientation is applied
(utils.guards.decode_image). Bad uploads get a message in the page and the app keeps running.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

import utils  # noqa: E402
from utils.core.guards import decode_image, read_zip_member  # noqa: E402
from utils.inference.batch_restore import restore_files  # noqa: E402
from utils.inference.hole_masks import fit_mask  # noqa: E402

MAX_UPLOAD_BYTES = 25 * 1024 * 1024          # one upload, or one image inside a batch zip (uncompressed)
MAX_PIXELS = 40_000_000
MAX_ZIP_MEMBERS = 2000                        # images per batch zip
MAX_ZIP_TOTAL_BYTES = 1024 * 1024 * 1024      # all images of a batch zip, uncompressed
MAX_PREVIEWS = 24                             # restorations shown in the batch tab (all of them are in the zip)
PREVIEW_SIDE = 384                            # px, the long side of a batch preview

# The damage editor: a square canvas of the working size; the image is fitted into it (letterboxed), the detected
# hole is drawn in blue on its one layer, the brush paints in red, the eraser clears both
MARK_SIZE = utils.IMAGE_SIZE
DETECTED_RGBA = (0, 160, 255, 128)
PAINT_RGB = (255, 0, 80)


class UploadError(utils.DataError):
    """A bad upload; the message is shown in the page (and a batch skips the file, as restore.py does)."""


def load_upload(path, what: str = "image") -> np.ndarray:
    """An uploaded file as a uint8 array (L or RGB), or UploadError with a message for the page."""
    if not path:
        raise UploadError(f"Please upload an {what}.")
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"{p.name}: file is {size / 2**20:.0f} MB, the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    return decode_upload(p, p.name)


def decode_upload(source, name: str) -> np.ndarray:
    """A file path or bytes -> uint8 L or RGB array (16-bit scaled to 8 bits), or UploadError for the page."""
    try:
        im = decode_image(source, MAX_PIXELS, name=name)
    except utils.DataError as e:
        msg = str(e).split(": ", 1)[-1]
        if "too large" in msg:
            raise UploadError(f"{name}: image too large ({msg}).") from e
        raise UploadError(f"{name}: not a readable image ({msg}).") from e
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im).copy()


class OutputFolder:
    """Where the app writes the files it offers for download: one temporary folder per app process, removed
    at exit, holding only the last `keep` results (Gradio serves its own copy of each from its cache). Each result
    gets a folder of its own, so that the file keeps the name it is downloaded under (`photo_restored.png`)."""

    def __init__(self, keep: int = 16):
        self.keep, self.dir = keep, None

    def path(self, name: str) -> Path:
        if self.dir is None or not self.dir.is_dir():
            self.dir = Path(tempfile.mkdtemp(prefix="image-restore-app-"))
            atexit.register(shutil.rmtree, self.dir, True)
        old = sorted(self.dir.iterdir(), key=lambda p: p.stat().st_mtime)
        for p in old[: max(0, len(old) - self.keep + 1)]:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return Path(tempfile.mkdtemp(dir=self.dir)) / safe_name(name)


def safe_name(name: str, fallback: str = "image") -> str:
    """A file name for a download: the last part of `name`, without characters that browsers or file systems
    refuse, at most 120 characters before its suffix."""
    p = Path(str(name).replace("\\", "/"))
    stem = "".join(c if c.isalnum() or c in "-_. " else "_" for c in p.stem).strip(" .")[:120] or fallback
    return stem + "".join(c for c in p.suffix if c.isalnum() or c == ".")


def restored_name(input_name: str | None) -> str:
    """The download name of a restoration: `<input stem>_restored.png` (`restored.png` without an input name)."""
    return f"{Path(safe_name(input_name)).stem}_restored.png" if input_name else "restored.png"


def upload_of(payload) -> tuple[str | None, str | None]:
    """(path, the name the user's file had) of an image component's raw value (the app's listeners take the upload
    as Gradio received it, unprocessed, so that every image is decoded by `load_upload` with its checks and
    messages); a path string (a test, an example) is its own name."""
    if not payload:
        return None, None
    if isinstance(payload, (str, os.PathLike)):
        return str(payload), Path(payload).name
    path = payload.get("path")
    return path, payload.get("orig_name") or (Path(path).name if path else None)


OUTPUTS = OutputFolder()


def score_text(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> str:
    r = utils.score_image(gt, pred, mask)
    return (f"**Score {r['score']:.4f}** — SSIM {r['ssim']:.4f} · masked SSIM {r['masked_ssim']:.4f} · "
            f"hue {r['hue']:.4f}")


def is_colour(image: np.ndarray) -> bool:
    """Whether an upload is a colour photo (more than 1% of its pixels with channels 12 or more apart), not a gray
    image stored as RGB."""
    if image.ndim == 2:
        return False
    rgb = image[..., :3].astype(np.int16)
    return bool(((rgb.max(-1) - rgb.min(-1)) >= 12).mean() > 0.01)


COLOUR_UPLOAD_NOTE = ("This upload is a colour photo: it is restored from its gray (as a damaged grayscale photo "
                      "is), so its colours are replaced by the restorer's.")


def restore_array(restorer, image: np.ndarray, gt: np.ndarray | None = None, true_mask=None, colour: str = "score",
                  name: str | None = None, hole_mask: np.ndarray | None = None, hole_note: str = "detected hole",
                  reference: np.ndarray | None = None, hints=None):
    """-> (mask overlay, colorized, restored, result PNG path, markdown). `name`: the input's file name, which the
    result's is made from (`photo.jpg` -> `photo_restored.png`). `hole_mask`: the hole to fill (bool HxW, the
    image's size) instead of the detected one; `hole_note` says in the report where the hole came from.
    `reference` (a colour photo whose hues to aim at) and `hints` ([(x, y, (r, g, b)), ...] in the image's
    pixels): `Restorer.with_guidance`."""
    gray = utils.gray_of(image) if image.ndim == 3 else image
    item = gray if hole_mask is None else (gray, hole_mask)
    r = next(restorer.restore_images([item], reference=reference, hints=hints or None))
    guided = [text for text, on in (("remapped to the reference photo's hues", reference is not None),
                                    (f"{len(hints or [])} colour hint{'s' * (len(hints or []) != 1)}", bool(hints)))
              if on]
    md = (f"Restored a {gray.shape[1]}x{gray.shape[0]} image ({colour} colours{', ' if guided else ''}"
          f"{' and '.join(guided)}); {hole_note}: {int(r.mask.sum())} px.")
    if is_colour(image):
        md += "\n\n" + COLOUR_UPLOAD_NOTE
    if gt is not None:
        if gt.ndim == 2:
            gt = np.repeat(gt[..., None], 3, -1)
        if gt.shape[:2] != gray.shape:
            md += (f"\n\nGround truth is {gt.shape[1]}x{gt.shape[0]}, the input {gray.shape[1]}x{gray.shape[0]}: "
                   "no score.")
        else:
            mask = true_mask if true_mask is not None else (gray != utils.gray_of(gt))
            md += "\n\n" + score_text(gt, r.restored, mask)
    out = OUTPUTS.path(restored_name(name))
    utils.write_png(out, r.restored)
    return utils.overlay_mask(gray, r.mask), r.colorized, r.restored, str(out), md


def central_square(rgb: np.ndarray, size: int = utils.IMAGE_SIZE) -> np.ndarray:
    """The central square of a photo (the whole photo when it is square), scaled to size x size; never mirrored."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = rgb[y0 : y0 + side, x0 : x0 + side]
    if side != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
    return np.ascontiguousarray(crop)


def crop_note(h: int, w: int, size: int = utils.IMAGE_SIZE) -> str:
    """What `central_square` did to an h x w photo, in words for the page."""
    if h == w:
        return (
            "The whole photo"
            + (f", scaled from {w}x{h} to {size}x{size}" if h != size else f" ({size}x{size})")
            + ", as the competition's inputs are."
        )
    side = min(h, w)
    scaled = f", scaled to {size}x{size}" if side != size else ""
    return (
        f"The photo's central {side}x{side} square (of {w}x{h}){scaled}, as the competition's inputs are; "
        "the rest of the photo is left out."
    )


def damage_photo(source, seed: int):
    """A colour photo (a file, or an array) -> (damaged gray 512x512, ground truth RGB, true mask), competition-style:
    the photo's central square (`central_square`), damaged by the competition's polygon generator (`seed`)."""
    rgb = source if isinstance(source, np.ndarray) else load_upload(source, "photo")
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, -1)
    crop = central_square(rgb[..., :3])
    dmg = utils.sample_damage(np.random.default_rng(int(seed) + 1))
    return utils.apply_damage(utils.gray_of(crop), dmg), crop, dmg.mask


def mark_box(h: int, w: int, size: int = MARK_SIZE) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of an h x w image fitted into the damage editor's size x size canvas (centred)."""
    s = min(size / w, size / h)
    fw, fh = max(1, min(size, round(w * s))), max(1, min(size, round(h * s)))
    return (size - fw) // 2, (size - fh) // 2, fw, fh


def mark_value(gray: np.ndarray, hole: np.ndarray) -> dict:
    """The damage editor's value for an image: the gray fitted into its canvas (transparent around it) and one
    layer with the detected `hole` in blue, which the user paints on and erases."""
    x0, y0, fw, fh = mark_box(*gray.shape)
    small = cv2.resize(gray, (fw, fh), interpolation=cv2.INTER_AREA if fw < gray.shape[1] else cv2.INTER_CUBIC)
    background = np.zeros((MARK_SIZE, MARK_SIZE, 4), np.uint8)
    background[y0 : y0 + fh, x0 : x0 + fw] = np.dstack([small, small, small, np.full_like(small, 255)])
    layer = np.zeros((MARK_SIZE, MARK_SIZE, 4), np.uint8)
    layer[y0 : y0 + fh, x0 : x0 + fw][fit_mask(hole, fh, fw)] = DETECTED_RGBA
    return {"background": background, "layers": [layer], "composite": None}


def marks_of(payload, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """(detected, painted): the damage editor's layer read back as two bool masks of the image's `shape` (h, w),
    the blue pixels left of the detected hole and the red ones painted; None when the editor holds no layer."""
    layers = (payload or {}).get("layers") or []
    path = layers[0].get("path") if layers and isinstance(layers[0], dict) else None
    if not path:
        return None
    try:
        with Image.open(path) as im:
            layer = np.asarray(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as e:
        raise UploadError(f"The marked damage could not be read ({e}); mark it again.") from e
    if layer.shape[:2] != (MARK_SIZE, MARK_SIZE):
        raise UploadError(
            f"The marked damage is {layer.shape[1]}x{layer.shape[0]}, the editor's canvas "
            f"{MARK_SIZE}x{MARK_SIZE}; upload the image again."
        )
    x0, y0, fw, fh = mark_box(*shape)
    part = layer[y0 : y0 + fh, x0 : x0 + fw].astype(np.int16)
    marked = part[..., 3] > 0
    painted = marked & (part[..., 0] > part[..., 2])  # red (the brush) over blue (the detection)
    return fit_mask(marked & ~painted, *shape), fit_mask(painted, *shape)


HOLE_CHOICES = [("painted and detected", "both"), ("painted only", "painted"), ("detected only", "detected")]


def chosen_hole(payload, fresh: bool, choice: str, shape) -> tuple[np.ndarray | None, str]:
    """(the hole to fill, or None for the detected one; the words for the report) from the damage editor's value,
    the Hole choice and whether the editor shows this upload (`fresh`)."""
    marks = marks_of(payload, shape) if fresh else None
    if marks is None:
        if choice == "painted":
            raise UploadError(
                "Nothing painted for this image yet: wait until it shows under 'Mark the damage', "
                "paint over the damage, then Restore."
            )
        return None, "detected hole (no marking for this image yet)"
    detected, painted = marks
    if choice == "painted":
        return painted, "painted hole"
    if choice == "detected":
        return detected, "detected hole (as marked)"
    return detected | painted, "hole, painted and detected"


def mark_note(image: np.ndarray, hole: np.ndarray) -> str:
    """What the damage editor shows, for the page."""
    md = (
        f"Detected hole: {int(hole.sum())} px, in blue. Paint any other damage in red (brush), erase what is not "
        "damage (eraser), choose the hole to fill, then Restore."
    )
    return md + ("\n\n" + COLOUR_UPLOAD_NOTE if is_colour(image) else "")


def batch_name(paths) -> str:
    """The stem the batch's download is named after: the input's (`photos.zip` -> `photos`), the first of several
    (`a.png`, `b.png` -> `a_and_1_more`)."""
    stem = Path(safe_name(Path(paths[0]).name)).stem
    return stem if len(paths) == 1 else f"{stem}_and_{len(paths) - 1}_more"


def batch_sources(paths, stack: contextlib.ExitStack):
    """(sources, problems) for `utils.batch_restore.restore_files` from uploaded images and zips: each image once,
    decoded when restored (zip members read one at a time into memory, nothing extracted to disk). Zips are
    checked before anything is decoded: at most MAX_ZIP_MEMBERS images, each at most MAX_UPLOAD_BYTES
    uncompressed (declared and actually inflated), MAX_ZIP_TOTAL_BYTES in all. Two images with one output name
    (a/x.png, b/x.png) keep the first and report the second."""
    sources, problems, first_of = [], [], {}

    def add(shown: str, load) -> None:
        out_name = Path(shown).stem + ".png"
        if out_name in first_of:
            problems.append(f"{shown}: same output name {out_name} as {first_of[out_name]}; skipped")
            return
        first_of[out_name] = shown
        sources.append((out_name, load))

    for path in paths:
        label = Path(path).name
        if Path(path).suffix.lower() != ".zip":
            if Path(label).suffix.lower() not in utils.IMAGE_EXTENSIONS:
                problems.append(f"{label}: not an image or a zip; skipped")
                continue
            add(label, lambda path=path: load_upload(path))
            continue
        try:
            zf = stack.enter_context(zipfile.ZipFile(path))
        except (zipfile.BadZipFile, OSError) as e:
            raise UploadError(f"{label}: not a readable zip ({e}).") from e
        entries = [
            i
            for i in zf.infolist()
            if not i.is_dir()
            and not Path(i.filename).name.startswith(".")
            and Path(i.filename).suffix.lower() in utils.IMAGE_EXTENSIONS
        ]
        if not entries:
            raise UploadError(f"{label}: the zip holds no images.")
        if len(entries) > MAX_ZIP_MEMBERS:
            raise UploadError(f"{label}: {len(entries)} images, the limit is {MAX_ZIP_MEMBERS} per zip.")
        total = sum(i.file_size for i in entries)
        if total > MAX_ZIP_TOTAL_BYTES:
            raise UploadError(
                f"{label}: {total / 2**20:.0f} MB uncompressed, the limit is {MAX_ZIP_TOTAL_BYTES // 2**20} MB per zip."
            )
        for info in entries:
            add(
                info.filename,
                lambda zf=zf, info=info, label=label: decode_upload(
                    read_zip_member(zf, info, MAX_UPLOAD_BYTES, label), info.filename
                ),
            )
    if len(sources) > MAX_ZIP_MEMBERS:
        raise UploadError(f"{len(sources)} images, the limit is {MAX_ZIP_MEMBERS} per batch.")
    return sources, problems


def preview(image: np.ndarray) -> np.ndarray:
    """A restoration scaled down for the batch's previews (long side PREVIEW_SIDE px at most)."""
    h, w = image.shape[:2]
    s = PREVIEW_SIDE / max(h, w)
    return (
        image
        if s >= 1
        else cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    )


def restore_uploads(restorer, paths, submission: bool = False, progress=None, colour: str | None = None):
    """Uploaded images and zips of them -> (download path, previews [(image, caption)], markdown report).

    submission=False: a zip `<input>_restored.zip` of the restorations, each PNG at its input's own size and named
    as the input (`photo.jpg` -> `photo.png`). submission=True: a validated submission zip `<input>_submission.zip`
    of 512x512 PNGs (as `restore.py --zip` writes; give a restorer with score colours). `colour`: the restorer's
    colour setting, said in the report. Restorations are streamed to disk; the first MAX_PREVIEWS are shown."""
    paths = [str(p) for p in (paths or []) if p]
    if not paths:
        raise UploadError("Please upload damaged grayscale images, or a zip of them.")
    stem = batch_name(paths)
    out = OUTPUTS.path(f"{stem}_submission.zip" if submission else f"{stem}_restored.zip")
    work = out.parent / "restored"
    with contextlib.ExitStack() as stack:
        sources, problems = batch_sources(paths, stack)
        if not sources:
            raise UploadError("No image to restore: " + "; ".join(problems))
        if progress is not None:
            sources = progress.tqdm(sources, desc="restoring")
        try:
            report = restore_files(
                restorer,
                sources,
                out_dir=None if submission else work,
                zip_path=out if submission else None,
                progress=False,
            )
        except utils.NothingRestoredError as e:
            raise UploadError("No image could be read: " + "; ".join(problems + e.failed)) from e
    problems += report.failed
    if submission:
        previews = []
        with zipfile.ZipFile(out) as zf:
            for name in report.zipped[:MAX_PREVIEWS]:
                previews.append((preview(decode_upload(zf.read(name), name)), name))
        done = len(report.zipped)
        md = (
            f"Restored {done} image(s) into a validated submission zip, {out.name}: 512x512 PNGs, "
            f"{colour or 'score'} colours (as `restore.py --zip`)."
        )
    else:
        if not report.written:
            raise UploadError("No image could be restored: " + "; ".join(problems))
        utils.zip_folder(work, out)
        previews = [(preview(utils.read_image(p, "RGB")), p.name) for p in report.written[:MAX_PREVIEWS]]
        done = len(report.written)
        md = (
            f"Restored {done} image(s), each at its own size"
            + (f" ({colour} colours)" if colour else "")
            + f", into {out.name}."
        )
    if done > len(previews):
        md += f" The first {len(previews)} are shown."
    if problems:
        md += "\n\nSkipped:\n" + "\n".join(f"- {p}" for p in problems)
    return str(out), previews, md


def restore_zip(restorer, zip_path, progress=None, colour: str | None = None):
    """A zip of damaged inputs -> (validated submission zip path, markdown report), as the Batch tab makes it
    (`restore_uploads(..., submission=True)`)."""
    if not zip_path:
        raise UploadError("Please upload a zip of damaged grayscale PNGs.")
    out, _, md = restore_uploads(restorer, [zip_path], submission=True, progress=progress, colour=colour)
    return out, md


def sample_examples(folder: Path, n: int = 3) -> list[list[str]]:
    """A few damaged samples (with ground truth) from the held-out bundled photos."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [p for p in utils.builtin_photo_paths() if p.name in utils.sample_data.BUILTIN_TEST][:n]
    rows = []
    for i, p in enumerate(photos):
        gray, gt, _ = damage_photo(p, seed=100 + i)
        utils.write_png(folder / f"sample_{i}.png", gray)
        utils.write_png(folder / f"sample_{i}_gt.png", gt)
        rows.append([str(folder / f"sample_{i}.png"), str(folder / f"sample_{i}_gt.png")])
    return rows


def picker_colour(value) -> tuple[int, int, int]:
    """A colour picker's value ('#rrggbb', '#rgb', 'rgb(r, g, b)' or 'rgba(r, g, b, a)') -> (r, g, b)."""
    import re

    text = str(value or "").strip().lower()
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        text = "#" + "".join(c * 2 for c in text[1:])
    if re.fullmatch(r"#[0-9a-f]{6}", text):
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(,\s*[\d.]+\s*)?\)", text)
    if m and all(float(v) <= 255 for v in m.groups()[:3]):
        return tuple(int(round(float(v))) for v in m.groups()[:3])
    raise UploadError(f"Hint colour {value!r}: not a colour (expected #rrggbb).")


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def draw_hints(gray: np.ndarray, hints) -> np.ndarray:
    """The image to click on: the input in gray with each hint drawn as a dot of its colour, ringed in white and
    black so that it shows on any background."""
    import cv2

    rgb = np.repeat(gray[..., None], 3, -1) if gray.ndim == 2 else gray[..., :3].copy()
    radius = max(4, round(max(gray.shape[:2]) / 90))
    for x, y, colour in hints:
        centre = (int(round(x)), int(round(y)))
        cv2.circle(rgb, centre, radius + 2, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(rgb, centre, radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(rgb, centre, radius, tuple(int(c) for c in colour), -1, cv2.LINE_AA)
    return rgb


def hints_text(hints) -> str:
    if not hints:
        return "No colour hints: click on the image to place one in the picked colour."
    return "Colour hints: " + "; ".join(f"{i}. ({x:.0f}, {y:.0f}) {hex_colour(c)}" for i, (x, y, c) in
                                         enumerate(hints, 1))


COLOUR_INFO = ("natural: the colour net's own hues, pale tints faded to gray; score: its hues remapped part of the way "
               "towards the training photos' mean hue histogram, for the competition's score (it can paint hues a "
               "person would not; docs/colour_experiments.md)")


MARK_INFO = (
    "Blue: the detected hole. Paint the damage in red with the brush (scratches, tears, spots; any number), "
    "erase what is not damage with the eraser."
)


def build_app(restorer, examples_dir: Path | None = None, colour: str = "natural"):
    import gradio as gr

    restorers = {"natural": restorer.with_colour("natural"), "score": restorer.with_colour("score")}

    def guarded(fn, n_out):
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (UploadError, utils.DataError, utils.SubmissionError) as e:
                return (*([None] * (n_out - 1)), f"⚠️ {e}")

        return wrapper

    # the image listeners take the uploads unprocessed (preprocess=False): Gradio's Image would open them with PIL
    # first, and a broken file would fail there with Gradio's message instead of ours (load_upload)
    def on_upload(payload):
        """The damage editor filled for a new upload: the image and its detected hole, on a layer to edit."""
        path, _ = upload_of(payload)
        if not path:
            return None, None, ""
        image = load_upload(path, "image")
        gray = utils.gray_of(image) if image.ndim == 3 else image
        hole = restorer.detect_hole(gray)
        return mark_value(gray, hole), path, mark_note(image, hole)

    def on_restore(
        payload, gt_payload, colours=colour, marks=None, hole_choice="both", marked_for=None, hints=None,
        reference_payload=None,
    ):
        path, name = upload_of(payload)
        image = load_upload(path, "image")
        gt_path, _ = upload_of(gt_payload)
        gt = load_upload(gt_path, "ground truth") if gt_path else None
        hole, note = chosen_hole(marks, marked_for == path, hole_choice, image.shape[:2])
        ref_path, ref_name = upload_of(reference_payload)
        reference = None
        if ref_path:
            reference = load_upload(ref_path, "reference photo")
            if reference.ndim == 2:
                raise UploadError(f"{ref_name}: the reference photo is gray: it has no colours to take.")
            try:
                utils.guidance.reference_prior(reference, name=ref_name)
            except ValueError as e:
                raise UploadError(f"{e}.") from e
        if hints:
            try:
                utils.guidance.check_hints(hints, image.shape[1], image.shape[0])
            except ValueError as e:
                raise UploadError(f"{e} (clear the hints after changing the image).") from e
        return restore_array(restorers[colours], image, gt, colour=colours, name=name, hole_mask=hole, hole_note=note,
                             reference=reference, hints=hints)

    def on_new_input(payload):
        """A new upload: the image to click for hints, no hints yet."""
        path, _ = upload_of(payload)
        if not path:
            return None, [], hints_text([])
        try:
            image = load_upload(path, "image")
        except UploadError as e:
            return None, [], f"⚠️ {e}"
        return draw_hints(image, []), [], hints_text([])

    def on_hint(payload, hints, picked, evt: gr.SelectData):
        """A click on the hint image: a hint at that pixel in the picked colour."""
        path, _ = upload_of(payload)
        if not path or evt is None or evt.index is None:
            return gr.skip(), hints, "Upload an image first, then click on it to place a hint."
        try:
            image = load_upload(path, "image")
            x, y = (float(v) for v in evt.index[:2])
            hints = [*hints, (x, y, picker_colour(picked))]
        except UploadError as e:
            return gr.skip(), hints, f"⚠️ {e}"
        return draw_hints(image, hints), hints, hints_text(hints)

    on_hint.__annotations__["evt"] = gr.SelectData      # (the annotation as a class: Gradio passes the click by it)

    def on_hints_changed(payload, hints):
        path, _ = upload_of(payload)
        if not path:
            return None, hints, hints_text(hints)
        try:
            return draw_hints(load_upload(path, "image"), hints), hints, hints_text(hints)
        except UploadError as e:
            return None, hints, f"⚠️ {e}"

    def on_damage(payload, seed, colours=colour):
        path, name = upload_of(payload)
        seed = int(seed or 0)  # an emptied field: seed 0
        rgb = load_upload(path, "photo")
        gray, gt, mask = damage_photo(rgb, seed)
        stem = Path(safe_name(name or "photo")).stem
        overlay, colorized, restored, out, md = restore_array(
            restorers[colours], gray, gt, true_mask=mask, colour=colours, name=f"{stem}_seed{seed}.png"
        )
        md = crop_note(*rgb.shape[:2]) + f" Damage seed {seed}.\n\n" + md
        return gray, gt, overlay, colorized, restored, out, md

    def on_batch(paths, colours=colour, kind="photos", progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
        if kind == "submission":  # a submission is scored: its colours are the score's, as restore.py --zip
            return restore_uploads(restorers["score"], paths, True, progress, colour="score")
        return restore_uploads(restorers[colours], paths, False, progress, colour=colours)

    # Gradio's own copies of uploads and results are deleted after 10 minutes (and at restart)
    with gr.Blocks(title="Image-Restore", delete_cache=(300, 600)) as demo:
        gr.Markdown(
            "# Image-Restore\nDamaged grayscale photo in, restored colour photo out: "
            "the hole (detected, or painted by you), the colorized image and the final restoration."
        )
        colours = gr.Radio(list(restorers), value=colour, label="Colours", info=COLOUR_INFO, elem_id="colours")
        with gr.Tabs():
            with gr.Tab("Restore"):
                with gr.Row():
                    in_file = gr.Image(
                        label="Damaged grayscale image",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        format="png",
                        elem_id="input-file",
                    )
                    gt_file = gr.Image(
                        label="Ground truth (optional, for the score)",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        format="png",
                        elem_id="gt-file",
                    )
                with gr.Accordion("Colour guidance (optional): a reference photo, colour hints", open=True):
                    with gr.Row():
                        hint_img = gr.Image(label="Click on the image to place a colour hint", format="png",
                                            interactive=False, elem_id="hint-image", buttons=[])
                        with gr.Column():
                            hint_colour = gr.ColorPicker(value="#c03020", label="Hint colour", elem_id="hint-colour")
                            hints_md = gr.Markdown(hints_text([]), elem_id="hints-list")
                            with gr.Row():
                                undo_hint = gr.Button("Undo last hint", size="sm", elem_id="undo-hint")
                                clear_hints = gr.Button("Clear hints", size="sm", elem_id="clear-hints")
                            reference_file = gr.Image(
                                label="Reference photo (optional): its colours become the target", type="filepath",
                                image_mode=None, sources=["upload", "clipboard"], format="png",
                                elem_id="reference-file")
                    hints = gr.State([])
                with gr.Row():
                    # one layer on a canvas of the working size: the detection in blue, the brush in red
                    # (mark_value, marks_of); no crop or resize tools (the marks must stay on the image's pixels)
                    mark = gr.ImageEditor(
                        label="Mark the damage",
                        type="numpy",
                        image_mode="RGBA",
                        format="png",
                        sources=(),
                        transforms=(),
                        layers=False,
                        fixed_canvas=True,
                        canvas_size=(MARK_SIZE, MARK_SIZE),
                        height=620,
                        scale=3,
                        brush=gr.Brush(
                            colors=[("rgb({}, {}, {})".format(*PAINT_RGB), 0.8)], default_size=5, color_mode="fixed"
                        ),
                        eraser=gr.Eraser(default_size=12),
                        elem_id="mark",
                    )
                    with gr.Column(scale=1, min_width=240):
                        hole_from = gr.Radio(
                            HOLE_CHOICES, value="both", label="Hole to fill", info=MARK_INFO, elem_id="hole-from"
                        )
                        mark_status = gr.Markdown(elem_id="mark-status")
                        go = gr.Button("Restore", variant="primary", elem_id="restore-btn")
                marked_for = gr.State(None)  # the upload the editor's image and layer belong to
                status = gr.Markdown(elem_id="status")
                with gr.Row():
                    mask_img = gr.Image(label="Hole filled", format="png", interactive=False, elem_id="mask-out")
                    col_img = gr.Image(label="Colorized", format="png", interactive=False, elem_id="colorized-out")
                    res_img = gr.Image(label="Restored", format="png", interactive=False, elem_id="restored-out")
                download = gr.File(label="Download the restored PNG", interactive=False, elem_id="download")
                if examples_dir is not None:
                    gr.Examples(
                        sample_examples(examples_dir), inputs=[in_file, gt_file], label="Samples (with ground truth)"
                    )
                in_file.change(guarded(on_upload, 3), [in_file], [mark, marked_for, mark_status], preprocess=False)
                go.click(
                    guarded(on_restore, 5),
                    [in_file, gt_file, colours, mark, hole_from, marked_for, hints, reference_file],
                    [mask_img, col_img, res_img, download, status],
                    preprocess=False,
                )
                in_file.change(on_new_input, in_file, [hint_img, hints, hints_md], preprocess=False)
                hint_img.select(on_hint, [in_file, hints, hint_colour], [hint_img, hints, hints_md],
                                preprocess=False)
                undo_hint.click(lambda p, h: on_hints_changed(p, h[:-1]), [in_file, hints],
                                [hint_img, hints, hints_md], preprocess=False)
                clear_hints.click(lambda p, h: on_hints_changed(p, []), [in_file, hints], [hint_img, hints, hints_md],
                                  preprocess=False)
            with gr.Tab("Damage a colour photo"):
                with gr.Row():
                    photo = gr.Image(
                        label="Colour photo",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        format="png",
                        elem_id="photo-file",
                    )
                    seed = gr.Number(value=0, precision=0, label="Damage seed")
                gr.Markdown(
                    "The photo's central square is taken and scaled to 512x512, the competition's size (a "
                    "square photo is taken whole); it is damaged with the competition's polygon generator "
                    "and restored."
                )
                go2 = gr.Button("Damage and restore", variant="primary", elem_id="damage-btn")
                status2 = gr.Markdown(elem_id="status-damage")
                with gr.Row():
                    dmg_img = gr.Image(label="Damaged input", format="png", interactive=False)
                    truth2 = gr.Image(
                        label="Ground truth (the photo's central square)",
                        format="png",
                        interactive=False,
                        elem_id="truth-damage",
                    )
                    mask2 = gr.Image(label="Detected hole", format="png", interactive=False)
                    col2 = gr.Image(label="Colorized", format="png", interactive=False)
                    res2 = gr.Image(label="Restored", format="png", interactive=False, elem_id="restored-damage")
                download2 = gr.File(label="Download the restored PNG", interactive=False, elem_id="download-damage")
                go2.click(
                    guarded(on_damage, 7),
                    [photo, seed, colours],
                    [dmg_img, truth2, mask2, col2, res2, download2, status2],
                    preprocess=False,
                )
            with gr.Tab("Batch"):
                gr.Markdown(
                    "The hole is detected in each image; to mark the damage yourself, use the Restore "
                    "tab, or `restore.py --hole-masks`."
                )
                batch_in = gr.File(
                    label="Damaged grayscale images, or zips of them",
                    file_count="multiple",
                    file_types=["image", ".zip"],
                    type="filepath",
                    elem_id="batch-files",
                )
                batch_kind = gr.Radio(
                    [
                        ("restored photos, each at its own size (a zip)", "photos"),
                        ("competition submission zip (512x512 PNGs, score colours, validated)", "submission"),
                    ],
                    value="photos",
                    label="Output",
                    elem_id="batch-kind",
                )
                go3 = gr.Button("Restore all", variant="primary", elem_id="batch-btn")
                status3 = gr.Markdown(elem_id="status-batch")
                zip_out = gr.File(label="Download", interactive=False, elem_id="zip-out")
                previews = gr.Gallery(
                    label="Restored",
                    columns=6,
                    fit_columns=False,
                    height=300,
                    object_fit="contain",
                    interactive=False,
                    elem_id="batch-previews",
                )
                go3.click(guarded(on_batch, 3), [batch_in, colours, batch_kind], [zip_out, previews, status3])
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="checkpoints (default: weights/, else checkpoints/)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--backend",
        default=os.environ.get("IMAGE_RESTORE_BACKEND", "torch"),
        choices=["torch", "onnx"],
        help="torch (CPU or CUDA) or onnx (onnxruntime, CPU); default $IMAGE_RESTORE_BACKEND, else torch",
    )
    ap.add_argument(
        "--colour",
        default="natural",
        choices=list(utils.pipeline.COLOURS),
        help="the page's starting Colours choice (natural: the colour net's own hues; score: for the "
        "competition's score); every tab uses the choice",
    )
    args = ap.parse_args(argv)
    from utils.core.runtime import tune_malloc

    tune_malloc()
    weights = utils.default_weights(args.weights)
    if weights is None:
        print(
            f"error: no complete set of mask/color/inpaint checkpoints in {args.weights or 'weights/ or checkpoints/'}",
            file=sys.stderr,
        )
        return 2
    try:
        restorer = utils.Restorer.from_dir(weights, device=args.device, backend=args.backend, colour="score")
    except (utils.ChecksumError, RuntimeError, OSError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    samples = Path(tempfile.mkdtemp(prefix="image-restore-samples-"))
    atexit.register(shutil.rmtree, samples, True)
    demo = build_app(restorer, samples, args.colour)
    # quiet: Gradio's own lines would suggest share=True (a public link) for this offline, local app
    demo.queue().launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        show_error=True,
        max_file_size="50mb",
        ssr_mode=False,
        quiet=True,
        prevent_thread_lock=True,
    )
    print(
        f"Image-Restore app running on http://{args.host}:{demo.server_port} (weights: {weights}, backend: "
        f"{args.backend}; offline, on this machine only). Ctrl-C to stop.",
        flush=True,
    )
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
