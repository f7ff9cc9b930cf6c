"""Restore damaged grayscale photos: find the hole, colour the image, fill the hole.

    python restore.py INPUT_DIR OUTPUT_DIR [--zip PATH] [--weights DIR] [--device auto|cpu|cuda]
                      [--batch-size N] [--masks DIR] [--order mask-colorize-inpaint|mask-inpaint-colorize]
                      [--backend torch|onnx] [--threads N] [--colour natural|score|S]
                      [--hole-masks DIR [--add-detected]] [--reference IMAGE] [--hint X,Y,#RRGGBB ...]

Every PNG/JPEG in INPUT_DIR is restored to OUTPUT_DIR/<name>.png. Before any work, the outputs are checked:
two inputs that would write the same file (photo.png, photo.jpg), an output that would replace an input
(OUTPUT_DIR = INPUT_DIR) or a restoration (--masks = OUTPUT_DIR), an output folder or --zip that cannot be
written, a folder where an output file would go: an error naming them, exit code 2, nothing written. Inputs
of another mode are converted to gray; inputs of another size are processed at 512x512 and resized back. A file that
cannot be read is reported by name and skipped while the rest are restored; the exit code is then 1. Outputs are written
atomically. --zip also writes a flat submission zip of the 512x512 restorations (validated); --masks writes each
predicted mask as a 0/255 PNG. --backend onnx runs the mask and colour networks in onnxruntime on the CPU (exported on
first use into <weights>/onnx/, verified at every load; see utils/inference/onnx_backend.py). Output PNGs are written
with zlib level 1 (4x faster than PIL's default 6, files about 10% larger; the pixels are the same).
--hole-masks DIR gives the damage instead of detecting it: DIR/<input stem>.png for every input, a one-channel PNG
(mode L or 1) of the input's size, non-zero where it is damaged (any shape: scratches, spots, several regions);
a missing mask, another size, mode or format: an error naming each, exit code 2, nothing written. --add-detected
also fills the hole the mask network finds. --masks then writes the holes filled.
--colour natural (the default without --zip) keeps the colour net's own hues and fades its pale tints to gray (fewer
confidently wrong colours); --colour score (the default with --zip, a submission) remaps them part of the way towards
the training photos' mean hue histogram, which scores more and looks less natural; a number in [0, 1] sets the remap's
strength (0: the colour net's own hues without the fade; docs/colour_experiments.md).
--reference IMAGE: a colour photo whose hue histogram becomes the remap's target instead of the training photos'
mean, the remap at full strength (or at the strength --colour gives: score, or a number). --hint X,Y,#RRGGBB
(repeatable): a colour at a point, in pixels from the image's top-left corner; it spreads over the region the point
belongs to, stopping at strong edges of the luminance, which stays the input's; several hints combine. Hints apply
to every input (a folder of one photo, or of photos of one framing); an input that a hint falls outside of is
reported by name and skipped.
Ctrl-C or SIGTERM stops it cleanly: the images already written stay, no temporary file is left and no zip is
written; exit code 130 (Ctrl-C) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def int_at_least(low: int):
    """An argparse type: an integer of `low` or more (argparse names the option in its error, exit code 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer of {low} or more, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer of {low} or more, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def colour_setting(text: str) -> str | float:
    """An argparse type for --colour: natural, score, or a hue-remap strength in [0, 1]."""
    if text in ("natural", "score"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected natural, score or a strength in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected natural, score or a strength in [0, 1], got {value}")
    return value


def hint_setting(text: str):
    """An argparse type for --hint: X,Y,#RRGGBB -> (x, y, (r, g, b))."""
    from utils.inference.guidance import HintError, parse_hint

    try:
        return parse_hint(text)
    except HintError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Interrupted(KeyboardInterrupt):
    """SIGTERM turned into the Ctrl-C path, so that the same clean-up runs (temporary files removed)."""


def _terminate(signum, frame):
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM does not cut the clean-up short
    raise Interrupted(signum)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input_dir", type=Path)
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--zip", type=Path, default=None, help="also write a submission zip of the outputs")
    ap.add_argument("--weights", type=Path, default=None, help="checkpoint dir (default: weights/, else checkpoints/)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch-size", type=int_at_least(1), default=4, help="images per network call (1 or more)")
    ap.add_argument("--masks", type=Path, default=None, help="write the holes filled (0/255 PNG) here")
    ap.add_argument(
        "--hole-masks",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the damage is, instead of detecting it: DIR/<input stem>.png per input, one channel "
        "(L or 1), the input's size, non-zero = damaged",
    )
    ap.add_argument(
        "--add-detected", action="store_true", help="with --hole-masks: also fill the hole the mask network finds"
    )
    ap.add_argument(
        "--order", default="mask-colorize-inpaint", choices=["mask-colorize-inpaint", "mask-inpaint-colorize"]
    )
    ap.add_argument(
        "--colour",
        type=colour_setting,
        default=None,
        help="natural (default without --zip): the colour net's own hues, pale tints faded to gray, for "
        "photos to look at; score (default with --zip): the hue remap towards the training photos' "
        "mean hue histogram at the strength the weights store, chosen for the competition's score "
        "(other hues than a person would paint); or a remap strength in [0, 1] "
        "(docs/colour_experiments.md)",
    )
    ap.add_argument(
        "--reference",
        type=Path,
        default=None,
        metavar="IMAGE",
        help="a colour photo whose hues to aim at: the hue remap towards its hue histogram, at full "
        "strength unless --colour gives score or a number",
    )
    ap.add_argument(
        "--hint",
        type=hint_setting,
        action="append",
        default=None,
        metavar="X,Y,#RRGGBB",
        help="a colour hint: the colour #RRGGBB at pixel (X, Y) from the top-left corner, spread over the "
        "region it belongs to (repeatable; the same hints for every input)",
    )
    ap.add_argument(
        "--backend", default="torch", choices=["torch", "onnx"], help="torch (CPU or CUDA) or onnx (onnxruntime, CPU)"
    )
    ap.add_argument(
        "--threads",
        type=int_at_least(1),
        default=None,
        help="CPU threads, 1 or more (default: torch's own, one per core)",
    )
    args = ap.parse_args(argv)
    if args.add_detected and args.hole_masks is None:
        ap.error("--add-detected adds the detected hole to the --hole-masks ones; give --hole-masks DIR")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM (kill, a scheduler's stop) takes the Ctrl-C path: the atomic writes and the zip remove their
    # temporary files on the way out, and the run ends with one line instead of a traceback
    in_main_thread = threading.current_thread() is threading.main_thread()  # (signal handlers only there)
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    run = {}  # _main puts the batch's report here, so that an interruption can say how far it got
    try:
        return _main(args, run)
    except KeyboardInterrupt as e:
        signum = e.args[0] if isinstance(e, Interrupted) else signal.SIGINT
        done = f"{len(run['report'].written)} of {run['total']}" if "report" in run else "0"
        no_zip = f"; {args.zip} not written" if args.zip and not run.get("finished") else ""
        print(f"\ninterrupted: {done} restored; nothing half-written left{no_zip}", file=sys.stderr)
        return 128 + int(signum)  # 130 for Ctrl-C, 143 for SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(args, run: dict) -> int:
    import torch

    import utils
    from utils.core.guards import OutputError, plan_outputs
    from utils.core.runtime import tune_malloc
    from utils.inference.batch_restore import BatchSubmissionError, NothingRestoredError, restore_files
    from utils.inference.hole_masks import HoleMaskError, hole_mask_paths, read_hole_mask

    tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.input_dir.is_file():
        print(
            f"error: {args.input_dir}: is a file, not a folder; restore.py restores every image in a folder: "
            f"give the folder (e.g. {args.input_dir.parent}), or put the image in a folder of its own",
            file=sys.stderr,
        )
        return 2
    if not args.input_dir.is_dir():
        print(f"error: {args.input_dir}: input folder not found", file=sys.stderr)
        return 2
    files = sorted(p for p in args.input_dir.iterdir() if p.is_file() and p.suffix.lower() in utils.IMAGE_EXTENSIONS)
    if not files:
        print(f"error: {args.input_dir}: no images found", file=sys.stderr)
        return 2
    hole_masks = {}
    if args.hole_masks is not None:
        try:  # every input's mask there, a one-channel PNG of its size (from the headers, before any work)
            hole_masks = hole_mask_paths(files, args.hole_masks)
        except HoleMaskError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    reference = None
    if args.reference is not None:
        if args.colour == "natural":
            print(
                "error: --reference with --colour natural: natural colours keep the colour net's own hues, a "
                "reference remaps them; leave --colour out (the full remap towards the reference) or give score "
                "or a strength",
                file=sys.stderr,
            )
            return 2
        try:
            reference = utils.read_image(args.reference, "RGB", convert=True)
            utils.guidance.reference_prior(reference, name=str(args.reference))
        except (utils.DataError, ValueError, OSError) as e:
            msg = f"--reference {e}" if str(args.reference) in str(e) else f"--reference {args.reference}: {e}"
            print(f"error: {msg}", file=sys.stderr)
            return 2
    try:  # before any work: no output may replace an input or another output, and every output can be written
        plan = plan_outputs(files, args.output_dir, args.masks, args.zip, other_inputs=hole_masks.values())
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    weights = utils.default_weights(args.weights)
    if weights is None:
        where = args.weights or "weights/ or checkpoints/"
        print(f"error: no complete set of mask/color/inpaint checkpoints in {where}", file=sys.stderr)
        return 2
    try:
        colour = args.colour or ("natural" if args.reference else "score" if args.zip else "natural")
        restorer = utils.Restorer.from_dir(
            weights,
            device=args.device,
            order=args.order,
            backend=args.backend,
            colour=colour,
        ).with_guidance(reference=reference, hints=args.hint)
    except (utils.ChecksumError, RuntimeError, OSError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # any mode is converted to gray (alpha dropped, PIL luma, 16-bit scaled to 8 bits); an image over
    # utils.guards.MAX_IMAGE_PIXELS is refused from its header: DataError names the file and it is skipped
    def load(p: Path):
        gray = utils.read_image(p, "L", convert=True)
        if args.hint:  # each hint inside this image, or the image is reported and skipped
            try:
                utils.guidance.check_hints(args.hint, gray.shape[1], gray.shape[0])
            except ValueError as e:
                raise utils.DataError(f"{p}: {e}") from None
        return (gray, read_hole_mask(hole_masks[p], gray.shape)) if p in hole_masks else gray

    sources = [(plan[p].name, lambda p=p: load(p)) for p in files]
    zip_error = None
    report = run["report"] = utils.BatchReport()
    run["total"] = len(files)
    try:
        report = restore_files(
            restorer,
            sources,
            out_dir=args.output_dir,
            zip_path=args.zip,
            masks_dir=args.masks,
            batch_size=args.batch_size,
            total=len(files),
            report=report,
            add_detected=args.add_detected,
        )
    except NothingRestoredError as e:  # every input failed: no zip
        report, zip_error = utils.BatchReport(failed=e.failed), f"{args.zip} not written: no image could be restored"
    except BatchSubmissionError as e:  # the zip was written but did not validate
        report, zip_error = e.report, f"{args.zip} is not a valid submission: {e}"
    run["finished"] = True
    if args.zip and zip_error is None:
        print(f"zip: {args.zip} ({len(report.zipped)} PNGs, valid)")
    elif zip_error is not None:
        print(f"error: {zip_error}", file=sys.stderr)
    print(f"restored {len(report.written)} of {len(files)} images into {args.output_dir}")
    if report.failed or zip_error:
        if report.failed:
            print(f"{len(report.failed)} failed:", *report.failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
