"""The restoration app (Gradio), over the same pipeline as restore.py and notebook 05.

    python app.py [--weights DIR] [--host 127.0.0.1] [--port 7860] [--device auto|cpu|cuda] [--backend torch|onnx]
                  [--colour natural|score]

--backend (default: $IMAGE_RESTORE_BACKEND, else torch): onnx runs the networks in onnxruntime on the CPU.
--colour: the Colours choice the page starts with (natural, the default: the colour net's own hues, pale tints faded
to gray; score: the hue
remap chosen for the competition's score, which can paint hues a person would not). Every tab uses the choice.

Runs on localhost, offline. Tabs: restore a damaged grayscale image (upload or a sample, shown as images, with an
optional ground truth for the score; colour guidance: a reference photo whose hues to aim at, and colour hints
placed by clicking on the image); damage a colour photo on the spot with the competition's polygon generator
and restore it; batch mode (a zip of inputs in, a validated submission zip out). Downloads are named after the
input (`photo.png` -> `photo_restored.png`); a photo's EXIF orientation is applied (utils.guards.decode_image).
Bad uploads get a message in the page and the app keeps running.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import utils  # noqa: E402
from utils.guards import decode_image, read_zip_member  # noqa: E402
from utils.batch_restore import restore_files  # noqa: E402

MAX_UPLOAD_BYTES = 25 * 1024 * 1024          # one upload, or one image inside a batch zip (uncompressed)
MAX_PIXELS = 40_000_000
MAX_ZIP_MEMBERS = 2000                        # images per batch zip
MAX_ZIP_TOTAL_BYTES = 1024 * 1024 * 1024      # all images of a batch zip, uncompressed


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


def restore_array(restorer, image: np.ndarray, gt: np.ndarray | None = None, true_mask=None, colour: str = "score",
                  name: str | None = None, reference: np.ndarray | None = None, hints=None):
    """-> (mask overlay, colorized, restored, result PNG path, markdown). `name`: the input's file name, which the
    result's is made from (`photo.jpg` -> `photo_restored.png`); `reference` (a colour photo whose hues to aim at)
    and `hints` ([(x, y, (r, g, b)), ...] in the image's pixels): `Restorer.with_guidance`."""
    gray = utils.gray_of(image) if image.ndim == 3 else image
    r = next(restorer.restore_images([gray], reference=reference, hints=hints or None))
    guided = [text for text, on in (("remapped to the reference photo's hues", reference is not None),
                                    (f"{len(hints or [])} colour hint{'s' * (len(hints or []) != 1)}", bool(hints)))
              if on]
    md = (f"Restored a {gray.shape[1]}x{gray.shape[0]} image ({colour} colours{', ' if guided else ''}"
          f"{' and '.join(guided)}); detected hole: {int(r.mask.sum())} px.")
    if gt is not None:
        if gt.ndim == 2:
            gt = np.repeat(gt[..., None], 3, -1)
        if gt.shape[:2] != gray.shape:
            md += f"\n\nGround truth is {gt.shape[1]}x{gt.shape[0]}, the input {gray.shape[1]}x{gray.shape[0]}: no score."
        else:
            mask = true_mask if true_mask is not None else (gray != utils.gray_of(gt))
            md += "\n\n" + score_text(gt, r.restored, mask)
    out = OUTPUTS.path(restored_name(name))
    utils.write_png(out, r.restored)
    return utils.overlay_mask(gray, r.mask), r.colorized, r.restored, str(out), md


def damage_photo(path, seed: int):
    """A colour photo -> (damaged gray 512x512, ground truth RGB, true mask), competition-style."""
    rgb = load_upload(path, "photo")
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, -1)
    crop, _ = utils.sample_data.random_crop(rgb, np.random.default_rng(int(seed)), scale=(1.0, 1.0))
    dmg = utils.sample_damage(np.random.default_rng(int(seed) + 1))
    return utils.apply_damage(utils.gray_of(crop), dmg), crop, dmg.mask


def restore_zip(restorer, zip_path, progress=None, colour: str | None = None):
    """A zip of damaged inputs -> (validated submission zip path, markdown report); `colour`: the restorer's colour
    setting, said in the report.

    Checked before anything is decoded: at most MAX_ZIP_MEMBERS images, each at most MAX_UPLOAD_BYTES
    uncompressed (declared and actually inflated), MAX_ZIP_TOTAL_BYTES in all; two members with one output name
    (a/x.png, b/x.png) keep the first and report the second. Members are read one at a time into memory
    (nothing is extracted to disk); the restorations are streamed into the output zip."""
    if not zip_path:
        raise UploadError("Please upload a zip of damaged grayscale PNGs.")
    label = Path(zip_path).name
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UploadError(f"{label}: not a readable zip ({e}).") from e
    problems = []
    with zf:
        entries, first_of = [], {}
        for info in zf.infolist():
            name = Path(info.filename).name
            if info.is_dir() or Path(name).suffix.lower() not in utils.IMAGE_EXTENSIONS or name.startswith("."):
                continue
            out_name = Path(name).stem + ".png"
            if out_name in first_of:
                problems.append(f"{info.filename}: same output name {out_name} as {first_of[out_name]}; skipped")
                continue
            first_of[out_name] = info.filename
            entries.append((info, out_name))
        if not entries:
            raise UploadError(f"{label}: the zip holds no images.")
        if len(entries) > MAX_ZIP_MEMBERS:
            raise UploadError(f"{label}: {len(entries)} images, the limit is {MAX_ZIP_MEMBERS} per zip.")
        total = sum(i.file_size for i, _ in entries)
        if total > MAX_ZIP_TOTAL_BYTES:
            raise UploadError(f"{label}: {total / 2**20:.0f} MB uncompressed, the limit is "
                              f"{MAX_ZIP_TOTAL_BYTES // 2**20} MB per zip.")
        out = OUTPUTS.path("submission.zip")
        sources = [(out_name, lambda info=info: decode_upload(read_zip_member(zf, info, MAX_UPLOAD_BYTES, label), info.filename))
                   for info, out_name in entries]
        if progress is not None:
            sources = progress.tqdm(sources, desc="restoring")
        try:
            report = restore_files(restorer, sources, zip_path=out, progress=False)
        except utils.NothingRestoredError as e:
            raise UploadError("No image in the zip could be read: " + "; ".join(problems + e.failed)) from e
    problems += report.failed
    done = len(report.zipped)
    md = f"Restored {done} image(s) into a validated submission zip" + (f" ({colour} colours)." if colour else ".")
    if problems:
        md += "\n\nSkipped:\n" + "\n".join(f"- {p}" for p in problems)
    return str(out), md


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
    def on_restore(payload, gt_payload, colours=colour, hints=None, reference_payload=None):
        path, name = upload_of(payload)
        image = load_upload(path, "image")
        gt_path, _ = upload_of(gt_payload)
        gt = load_upload(gt_path, "ground truth") if gt_path else None
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
        return restore_array(restorers[colours], image, gt, colour=colours, name=name, reference=reference,
                             hints=hints)

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
        seed = int(seed or 0)                  # an emptied field: seed 0
        gray, gt, mask = damage_photo(path, seed)
        stem = Path(safe_name(name or "photo")).stem
        overlay, colorized, restored, out, md = restore_array(restorers[colours], gray, gt, true_mask=mask,
                                                              colour=colours, name=f"{stem}_seed{seed}.png")
        return gray, gt, overlay, colorized, restored, out, md

    def on_batch(zip_path, colours=colour, progress=gr.Progress()):
        return restore_zip(restorers[colours], zip_path, progress, colour=colours)

    # Gradio's own copies of uploads and results are deleted after 10 minutes (and at restart)
    with gr.Blocks(title="Image-Restore", delete_cache=(300, 600)) as demo:
        gr.Markdown("# Image-Restore\nDamaged grayscale photo in, restored colour photo out: "
                    "the detected hole, the colorized image and the final restoration.")
        colours = gr.Radio(list(restorers), value=colour, label="Colours", info=COLOUR_INFO, elem_id="colours")
        with gr.Tabs():
            with gr.Tab("Restore"):
                with gr.Row():
                    in_file = gr.Image(label="Damaged grayscale image", type="filepath", image_mode=None,
                                       sources=["upload", "clipboard"], format="png", elem_id="input-file")
                    gt_file = gr.Image(label="Ground truth (optional, for the score)", type="filepath", image_mode=None,
                                       sources=["upload", "clipboard"], format="png", elem_id="gt-file")
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
                go = gr.Button("Restore", variant="primary", elem_id="restore-btn")
                status = gr.Markdown(elem_id="status")
                with gr.Row():
                    mask_img = gr.Image(label="Detected hole", format="png", interactive=False, elem_id="mask-out")
                    col_img = gr.Image(label="Colorized", format="png", interactive=False, elem_id="colorized-out")
                    res_img = gr.Image(label="Restored", format="png", interactive=False, elem_id="restored-out")
                download = gr.File(label="Download the restored PNG", interactive=False, elem_id="download")
                if examples_dir is not None:
                    gr.Examples(sample_examples(examples_dir), inputs=[in_file, gt_file], label="Samples (with ground truth)")
                go.click(guarded(on_restore, 5), [in_file, gt_file, colours, hints, reference_file],
                         [mask_img, col_img, res_img, download, status], preprocess=False)
                in_file.change(on_new_input, in_file, [hint_img, hints, hints_md], preprocess=False)
                hint_img.select(on_hint, [in_file, hints, hint_colour], [hint_img, hints, hints_md],
                                preprocess=False)
                undo_hint.click(lambda p, h: on_hints_changed(p, h[:-1]), [in_file, hints],
                                [hint_img, hints, hints_md], preprocess=False)
                clear_hints.click(lambda p, h: on_hints_changed(p, []), [in_file, hints], [hint_img, hints, hints_md],
                                  preprocess=False)
            with gr.Tab("Damage a colour photo"):
                with gr.Row():
                    photo = gr.Image(label="Colour photo", type="filepath", image_mode=None,
                                     sources=["upload", "clipboard"], format="png", elem_id="photo-file")
                    seed = gr.Number(value=0, precision=0, label="Damage seed")
                go2 = gr.Button("Damage and restore", variant="primary", elem_id="damage-btn")
                status2 = gr.Markdown(elem_id="status-damage")
                with gr.Row():
                    dmg_img = gr.Image(label="Damaged input", format="png", interactive=False)
                    truth2 = gr.Image(label="Ground truth (the photo's crop)", format="png", interactive=False,
                                      elem_id="truth-damage")
                    mask2 = gr.Image(label="Detected hole", format="png", interactive=False)
                    col2 = gr.Image(label="Colorized", format="png", interactive=False)
                    res2 = gr.Image(label="Restored", format="png", interactive=False, elem_id="restored-damage")
                download2 = gr.File(label="Download the restored PNG", interactive=False, elem_id="download-damage")
                go2.click(guarded(on_damage, 7), [photo, seed, colours],
                          [dmg_img, truth2, mask2, col2, res2, download2, status2], preprocess=False)
            with gr.Tab("Batch"):
                zip_in = gr.File(label="Zip of damaged grayscale PNGs", file_types=[".zip"], type="filepath", elem_id="zip-file")
                go3 = gr.Button("Restore all", variant="primary", elem_id="batch-btn")
                status3 = gr.Markdown(elem_id="status-batch")
                zip_out = gr.File(label="Submission zip", interactive=False, elem_id="zip-out")
                go3.click(guarded(on_batch, 2), [zip_in, colours], [zip_out, status3])
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="checkpoints (default: weights/, else checkpoints/)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--backend", default=os.environ.get("IMAGE_RESTORE_BACKEND", "torch"), choices=["torch", "onnx"],
                    help="torch (CPU or CUDA) or onnx (onnxruntime, CPU); default $IMAGE_RESTORE_BACKEND, else torch")
    ap.add_argument("--colour", default="natural", choices=list(utils.pipeline.COLOURS),
                    help="the page's starting Colours choice (natural: the colour net's own hues; score: for the "
                         "competition's score); every tab uses the choice")
    args = ap.parse_args(argv)
    from utils.runtime import tune_malloc

    tune_malloc()
    weights = utils.default_weights(args.weights)
    if weights is None:
        print(f"error: no complete set of mask/color/inpaint checkpoints in {args.weights or 'weights/ or checkpoints/'}",
              file=sys.stderr)
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
    demo.queue().launch(server_name=args.host, server_port=args.port, share=False, show_error=True,
                        max_file_size="50mb", ssr_mode=False, quiet=True, prevent_thread_lock=True)
    print(f"Image-Restore app running on http://{args.host}:{demo.server_port} (weights: {weights}, backend: "
          f"{args.backend}; offline, on this machine only). Ctrl-C to stop.", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
