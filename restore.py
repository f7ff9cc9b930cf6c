"""Restore damaged grayscale photos: find the hole, colour the image, fill the hole.

    python restore.py INPUT_DIR OUTPUT_DIR [--zip PATH] [--weights DIR] [--device auto|cpu|cuda]
                      [--batch-size N] [--masks DIR] [--order mask-colorize-inpaint|mask-inpaint-colorize]
                      [--backend torch|onnx] [--threads N]

Every PNG/JPEG in INPUT_DIR is restored to OUTPUT_DIR/<name>.png. Before any work, the outputs are checked:
two inputs that would write the same file (photo.png, photo.jpg), an output that would replace an input
(OUTPUT_DIR = INPUT_DIR) or a restoration (--masks = OUTPUT_DIR), an output folder or --zip that cannot be
written: an error naming them, exit code 2, nothing written. Inputs of another mode are converted to
gray; inputs of another size are processed at 512x512 and resized back. A file that cannot be read is
reported by name and skipped while the rest are restored; the exit code is then 1. Outputs are written
atomically. --zip also writes a flat submission zip of the 512x512 restorations (validated); --masks writes
each predicted mask as a 0/255 PNG. --backend onnx runs the three networks in onnxruntime on the CPU (exported
on first use into <weights>/onnx/, verified at every load; see utils/onnx_backend.py). Output PNGs are written
with zlib level 1 (4x faster than PIL's default 6, files about 10% larger; the pixels are the same).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PNG_LEVEL = 1


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input_dir", type=Path)
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--zip", type=Path, default=None, help="also write a submission zip of the outputs")
    ap.add_argument("--weights", type=Path, default=None, help="checkpoint dir (default: weights/, else checkpoints/)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--masks", type=Path, default=None, help="write predicted masks (0/255 PNG) here")
    ap.add_argument("--order", default="mask-colorize-inpaint", choices=["mask-colorize-inpaint", "mask-inpaint-colorize"])
    ap.add_argument("--backend", default="torch", choices=["torch", "onnx"],
                    help="torch (CPU or CUDA) or onnx (onnxruntime, CPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's own, one per core)")
    return ap.parse_args(argv)


def load_gray(path: Path):
    """Any readable image as a uint8 gray array (alpha dropped, PIL luma; 16-bit scaled to 8 bits; an image
    over utils.guards.MAX_IMAGE_PIXELS refused from its header): utils.read_image's DataError names the file."""
    import utils

    return utils.read_image(path, "L", convert=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    import utils
    from utils.guards import OutputError, plan_outputs
    from utils.runtime import tune_malloc

    tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)

    if not args.input_dir.is_dir():
        print(f"error: {args.input_dir}: input folder not found", file=sys.stderr)
        return 2
    files = sorted(p for p in args.input_dir.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        print(f"error: {args.input_dir}: no images found", file=sys.stderr)
        return 2
    try:    # before any work: no output may replace an input or another output, and every output can be written
        plan = plan_outputs(files, args.output_dir, args.masks, args.zip)
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    weights = utils.find_weights(*([args.weights] if args.weights else [ROOT / "weights", ROOT / "checkpoints"]))
    if weights is None:
        where = args.weights or "weights/ or checkpoints/"
        print(f"error: no complete set of mask/color/inpaint checkpoints in {where}", file=sys.stderr)
        return 2
    try:
        restorer = utils.Restorer.from_dir(weights, device=args.device, order=args.order, backend=args.backend)
    except (utils.ChecksumError, RuntimeError, OSError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    failed, written, for_zip = [], [], {}

    def save(path: Path, r, shape):
        """Write the restoration at the input's own size; keep the 512x512 one for the zip."""
        out = plan[path]
        full = utils.pipeline.resize_restoration(r, *shape)
        try:
            utils.write_png(out, full.restored, compress_level=PNG_LEVEL)
            if args.masks:
                utils.write_png(args.masks / out.name, full.mask.astype(np.uint8) * 255, compress_level=PNG_LEVEL)
        except OSError as e:
            failed.append(f"{out}: cannot write ({e.strerror or e})")
            tqdm.write(f"not written: {failed[-1]}")
            return
        written.append(out)
        if args.zip:
            for_zip[out.name] = r.restored

    bar = tqdm(total=len(files), desc="restoring", unit="img")
    batch: list[tuple[Path, np.ndarray, tuple]] = []

    def flush():
        if batch:
            for (p, _, shape), r in zip(batch, restorer.restore_batch([g for _, g, _ in batch])):
                save(p, r, shape)
            bar.update(len(batch))
            batch.clear()

    for path in files:
        try:
            gray = load_gray(path)
        except utils.DataError as e:
            failed.append(str(e))
            tqdm.write(f"skipped: {e}")
            bar.update(1)
            continue
        batch.append((path, utils.pipeline.to_competition_gray(gray), gray.shape))
        if len(batch) >= args.batch_size:
            flush()
    flush()
    bar.close()

    if args.zip and for_zip:
        names = sorted(for_zip)
        try:
            utils.write_submission_zip(for_zip, args.zip)
            utils.validate_submission(args.zip, names)
            print(f"zip: {args.zip} ({len(names)} PNGs, valid)")
        except utils.SubmissionError as e:
            failed.append(f"zip not written: {e}")
            print(f"error: {e}", file=sys.stderr)
    print(f"restored {len(written)} of {len(files)} images into {args.output_dir}")
    if failed:
        print(f"{len(failed)} failed:", *failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
