"""Train one stage from the command line, on one device or several (Hugging Face accelerate).

    python tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints --epochs 6            # one device
    accelerate launch --multi_gpu --num_processes 2 tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints
    accelerate launch --multi_gpu --num_processes 2 tools/train.py --cpu --stage color --steps-per-epoch 5  # CPU, gloo

(`accelerate launch --cpu --num_processes 2` starts ONE process: accelerate runs several CPU processes only
through mpirun. `--multi_gpu` starts them with torch.distributed.run, and the script's own --cpu keeps them on
the CPU; `torchrun --nproc_per_node 2 tools/train.py ...` does the same.)

The same stages, data sets, defaults and checkpoints as notebooks 02-04 (utils.distributed.build), written by
the main process only; an interrupted run resumes from its last epoch (--no-resume starts over; resuming with
other settings than the checkpoint's, e.g. another --loss, --lr, --batch-size, --train-source or --data-dir, is
refused with exit code 2, naming them; more --epochs or another --steps-per-epoch continue it). --batch-size is
per process (the global batch is batch size x processes) and --steps-per-epoch counts one process's steps. The
notebooks' loss comparisons, chroma-gain and hue calibration are not run here: pass the loss to train with
(--loss), and run the notebooks' later cells (or notebook 05) on the checkpoints afterwards.

Paths (--data-dir, --ckpt-dir, --photos, --init-weights) are taken from the working directory. A --data-dir (or
$IMAGE_RESTORE_DATA) must hold a dataset: only the default data/ of the repository gets the sample dataset built
when it holds none.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from utils.distributed import STAGES, train
from utils.images import DataError
from utils.losses import MEASURED_DEFAULT
from utils.paths import cli_path, project_dir
from utils.sample_data import check_data_dir
from utils.training import SettingsChangedError


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=STAGES, required=True)
    ap.add_argument("--data-dir", default=None, help="a folder in the competition layout (default: $IMAGE_RESTORE_DATA, "
                    "else data/ in the repository, where the sample dataset is built if none is there)")
    ap.add_argument("--ckpt-dir", default=None, help="checkpoints (default: $IMAGE_RESTORE_CHECKPOINTS, else checkpoints/)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps-per-epoch", type=int, default=None, help="per process; default: the whole train split")
    ap.add_argument("--batch-size", type=int, default=8, help="per process")
    ap.add_argument("--num-workers", type=int, default=1, help="data-loader workers per process")
    ap.add_argument("--no-resume", dest="resume", action="store_false", help="train from scratch over ckpt-dir")
    ap.add_argument("--no-validate", dest="validate", action="store_false", help="skip the per-epoch validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--amp", type=_bool, default=None, help="bf16 autocast (default: on CUDA, off on CPU)")
    ap.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is there")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--train-source", choices=("synthetic", "provided", "both", "photos"), default="synthetic")
    ap.add_argument("--photos", default=None, help="--train-source photos: a folder of colour photos, or a .txt file listing "
                    "them one per line (default: the photos the data dir's manifest.csv names, less those with "
                    "validation crops)")
    ap.add_argument("--crop-scale", type=float, nargs=2, default=(1.0, 3.0), help="--train-source photos: crop short "
                    "side is 512 x s, s drawn in this range")
    ap.add_argument("--stroke-share", type=float, default=0.0, help="share of the synthetic damage that is free-form "
                    "strokes (scratches; utils.damage.DamageConfig) instead of the competition's polygons (default 0)")
    ap.add_argument("--init-weights", default=None, help="start from these weights (a folder, e.g. weights) instead of ImageNet")
    ap.add_argument("--val-count", type=int, default=48)
    ap.add_argument("--max-train", type=int, default=None, help="use only the first N photos of the train split")
    ap.add_argument("--loss", default=None, help=f"default: the measured default {MEASURED_DEFAULT}")
    ap.add_argument("--lr", type=float, default=None, help="default: the stage's (mask 1e-3, color/inpaint 5e-4)")
    ap.add_argument("--encoder", default=None, help="default: tf_efficientnet_lite0")
    ap.add_argument("--pretrained", default=None, help="offline | online | auto | none (default: auto)")
    ap.add_argument("--rebalance-lambda", type=float, default=None, help="color, classify losses: class rebalancing "
                    "(Zhang et al.'s lambda; default 0.5, 1.0 off)")
    g = ap.add_argument_group("inpaint only")
    g.add_argument("--d-lr", type=float, default=None)
    g.add_argument("--gan-weight", type=float, default=None)
    g.add_argument("--ssim-weight", type=float, default=None)
    g.add_argument("--hole-weight", type=float, default=None)
    g.add_argument("--gray-share", type=float, default=0.1)
    g.add_argument("--block", choices=("ffc", "gated", "unet"), default=None, help="the InpaintNet's middle blocks "
                   "(default ffc: fast Fourier convolutions, chosen by measurement)")
    args = ap.parse_args(argv)
    # paths typed here are taken from the working directory (utils.distributed.train takes a relative one from the
    # repository root, as the notebooks do): hand it absolute ones
    for k in ("data_dir", "ckpt_dir", "photos", "init_weights"):
        if getattr(args, k) is not None:
            setattr(args, k, str(cli_path(getattr(args, k))))
    try:        # a data dir without a dataset stops here, before any process trains (only data/ gets sample data)
        check_data_dir(args.data_dir or project_dir("data"))
    except DataError as e:
        ap.error(str(e))
    return args


def main(argv=None) -> int:
    args = vars(parse(argv))
    stage = args.pop("stage")
    for k in ("d_lr", "gan_weight", "ssim_weight", "hole_weight", "block"):
        if stage != "inpaint" and args[k] is not None:
            raise SystemExit(f"--{k.replace('_', '-')} is an inpaint option")
        if args[k] is None:
            args.pop(k)
    if stage != "color" and args["rebalance_lambda"] is not None:
        raise SystemExit("--rebalance-lambda is a color option")
    for k in ("loss", "lr", "encoder", "pretrained", "init_weights", "rebalance_lambda"):
        if args[k] is None:
            args.pop(k)
    try:
        result = train(stage, **args)
    except SettingsChangedError as e:      # every rank refuses alike (same train state); one line, from the first
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"error: {e.path}: this checkpoint was trained with other settings ({e.lines}); resuming would mix "
                  "them: pass --no-resume to train from scratch over it, or another --ckpt-dir for the new settings",
                  file=sys.stderr)
        return 2
    if result["accelerator"].is_main_process:
        last = result["history"][-1] if result["history"] else {}
        print(json.dumps({"stage": stage, "epochs": len(result["history"]), "last": last}, default=str))
    result["accelerator"].end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
