"""The inpainter's generators and losses at an equal budget: each option trained from the same seed for the same
number of steps on the same hole windows (utils.compare_options, as notebook 04's optional comparison), validated on the
same full-resolution validation holes (scenes not trained on) (masked SSIM of the luminance, against the pre-fill's),
with the CPU seconds each took.

    python research/inpaint_compare.py corpus --steps 60 --image-size 128 --out runs/inpaint_compare
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--val-count", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("runs/inpaint_compare"))
    args = ap.parse_args(argv)
    import utils

    run = utils.prepare_run(args.data, "cpu", 0, max_val=args.val_count)
    base, val = utils.train_val_datasets(
        run["train_paths"],
        run["val_paths"],
        args.image_size,
        0,
        train_source="photos",
        data_dir=run["data_dir"],
        repeats=4,
    )
    train = utils.InpaintDataset(base, args.image_size)
    validate = lambda stage: utils.validate_inpaint(stage, val)  # noqa: E731
    results = {}
    config = utils.InpaintConfig(lr=2e-3, image_size=args.image_size, batch_size=args.batch_size, num_workers=0)
    blocks = utils.compare_options(
        lambda b: utils.InpaintStage(config, block=b),
        utils.train_config.INPAINT_BLOCKS,
        train,
        validate,
        steps=args.steps,
        ckpt_root=args.out / "blocks",
        seed=config.seed,
    )
    print(blocks.round(4).to_string())
    results["blocks"] = blocks.to_dict(orient="index")
    losses = utils.compare_options(
        lambda kind: utils.InpaintStage(config, loss=kind),
        utils.losses.INPAINT_LOSSES,
        train,
        validate,
        steps=args.steps,
        ckpt_root=args.out / "losses",
        seed=config.seed,
    )
    print(losses.round(4).to_string())
    results["losses"] = losses.to_dict(orient="index")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(
        json.dumps({"steps": args.steps, "image_size": args.image_size, **results}, indent=1, default=float)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
