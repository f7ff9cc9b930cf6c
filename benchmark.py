"""Score and CPU time of the pipeline against the references, on a test split with ground truth.

    python benchmark.py [--data-dir DIR] [--weights DIR] [--limit N] [--repeats 5] [--threads N]
                        [--backends torch,onnx] [--batch-size 4]
                        [--baseline-minutes M] [--baseline-dir DIR] [--json PATH]

References: the gray input copied to RGB; OpenCV Telea with the known mask; the competition's published
baseline architecture (two UNet-ResNet34, gray restore then colorize, L1+MSE), trained here on the same
data (the data dir's train_gt with the same on-the-fly damage) for --baseline-minutes (CPU time per thread:
the wall time on an idle machine), or loaded from --baseline-dir; an interrupted training resumes from
baseline.train_state.pt there. Timings are medians of --repeats single-image calls in this process after a
warm-up, on the device the weights run on (CPU unless --device says otherwise). The pipeline runs with each
of --backends (torch; onnx: onnxruntime on the CPU, see utils/inference/onnx_backend.py), scored and timed, plus a table
of its per-image time at batch 1 and at --batch-size (restore.py's default batch): the three networks, mask
refinement, Telea and hue matching, all of the pipeline but the PNG reading and writing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from restore import colour_setting, int_at_least  # restore.py beside this file: its argparse types


def minutes(text: str) -> float:
    """An argparse type: a finite number of minutes, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, 0 or more, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of minutes, 0 or more, got {text}")
    return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-dir", default=None, help="dataset with test_gt/ and test_mask/ (default: $IMAGE_RESTORE_DATA or data/)"
    )
    ap.add_argument("--weights", default=None, help="pipeline checkpoints (default: weights/, else checkpoints/)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument(
        "--limit", type=int_at_least(1), default=None, help="score only the first N test images (1 or more)"
    )
    ap.add_argument("--repeats", type=int_at_least(1), default=5, help="timed calls per median (1 or more)")
    ap.add_argument(
        "--threads", type=int_at_least(1), default=None, help="torch CPU threads, 1 or more (default: torch's own)"
    )
    ap.add_argument("--backends", default="torch,onnx", help="pipeline backends to score and time (comma-separated)")
    ap.add_argument(
        "--batch-size", type=int_at_least(1), default=4, help="batch of the batched per-image timing (1 or more)"
    )
    ap.add_argument(
        "--baseline-minutes",
        type=minutes,
        default=0.0,
        help="train the competition baseline this long (0: skip unless --baseline-dir has it)",
    )
    ap.add_argument("--baseline-dir", default="checkpoints/baseline")
    ap.add_argument(
        "--baseline-encoder",
        default="resnet34",
        help="timm encoder of the baseline's two UNets (the competition used resnet34)",
    )
    ap.add_argument(
        "--colour",
        type=colour_setting,
        default="score",
        help="the pipeline's colours: score (default, what a submission holds), natural, or a hue-remap "
        "strength in [0, 1] (research/colour_frontier.py compares settings)",
    )
    ap.add_argument(
        "--hole-figure",
        default=None,
        help="also draw the hole-colour figure (ring vs hole chroma, ours against the truth) into this PNG",
    )
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import utils

    try:
        return run(args)
    except utils.DataError as e:  # a bad data dir or image: one line naming the file, as restore.py says it
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    import utils
    from research.competition_baseline import BASELINE_IMPL, CompetitionBaseline, baseline_restore, train_baseline
    from utils.core.runtime import tune_malloc

    tune_malloc()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in utils.pipeline.BACKENDS for b in backends):
        print(f"error: --backends takes a list of {utils.pipeline.BACKENDS}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    data = utils.resolve_data_dir(args.data_dir)
    if not data.is_dir():
        print(
            f"error: {data}: data folder not found (give --data-dir, or set {utils.datasets.DATA_DIR_ENV})",
            file=sys.stderr,
        )
        return 2
    test = utils.load_test_table(data)
    names = [Path(p).name for p in test.input_image_path][: args.limit]
    if not names:
        print(f"error: {data / 'test.csv'}: no test images to score", file=sys.stderr)
        return 2
    if not (data / "test_gt").is_dir() or not (data / "test_mask").is_dir():
        print(f"error: {data} has no test_gt/ and test_mask/: nothing to score against", file=sys.stderr)
        return 2
    grays = [utils.read_image(data / "test_input" / n, "L", 512) for n in names]
    gts = [utils.read_image(data / "test_gt" / n, "RGB", 512) for n in names]
    masks = [utils.read_image(data / "test_mask" / n, "L", 512) > 0 for n in names]

    weights = utils.default_weights(args.weights)
    if weights is None:
        print("error: no pipeline weights in weights/ or checkpoints/", file=sys.stderr)
        return 2
    restorers = {
        b: utils.Restorer.from_dir(
            weights, device=args.device if b == "torch" else "cpu", backend=b, colour=args.colour
        )
        for b in backends
    }
    restorer = restorers[backends[0]]
    other_order = utils.Restorer.from_dir(
        weights, device=args.device, order="mask-inpaint-colorize", backend=backends[0], colour=args.colour
    )
    methods = {
        ("pipeline (ours)" if b == "torch" else f"pipeline (ours), {b} backend"): (lambda i, r=r: r.restore(grays[i]))
        for b, r in restorers.items()
    }
    methods.update(
        {
            "ours, order mask-inpaint-colorize": lambda i: other_order.restore(grays[i]),
            "gray copy": lambda i: utils.gray_copy(grays[i]),
            "Telea, known mask": lambda i: utils.telea(grays[i], masks[i]),
        }
    )

    base_dir = Path(args.baseline_dir)
    baseline, base_info = None, None
    if args.baseline_minutes > 0:
        table = utils.load_train_table(data)
        train_ds = utils.SyntheticDamageDataset(
            list(table.gt_image_path), utils.DamageConfig(train_style_share=0.1), size=256, seed=0, repeats=5
        )
        baseline = CompetitionBaseline(encoder=args.baseline_encoder)
        base_info = train_baseline(
            baseline,
            train_ds,
            args.baseline_minutes,
            device=utils.pick_device(args.device),
            state_path=base_dir / "baseline.train_state.pt",
        )
        base_info["encoder"] = args.baseline_encoder
        utils.save_model(
            baseline,
            {
                "arch": "CompetitionBaseline",
                "impl": BASELINE_IMPL,
                "encoder": args.baseline_encoder,
                "training": base_info,
            },
            base_dir / "baseline",
        )
    elif (base_dir / "baseline.safetensors").is_file():
        from safetensors.torch import load_file

        base_cfg = json.loads((base_dir / "baseline.json").read_text())
        if base_cfg.get("impl") != BASELINE_IMPL:
            print(
                f"error: {base_dir / 'baseline.json'}: a baseline of an older implementation (before it was built "
                "with segmentation_models_pytorch); train it again with --baseline-minutes into another "
                "--baseline-dir",
                file=sys.stderr,
            )
            return 2
        baseline = CompetitionBaseline(encoder=base_cfg.get("encoder", "resnet34"))
        baseline.load_state_dict(load_file(str(base_dir / "baseline.safetensors")))
        base_info = base_cfg.get("training")
        baseline.eval()
    if baseline is not None:
        baseline.to(utils.pick_device(args.device))
        enc = baseline.encoder_name
        label = "UNet-ResNet34 x2" if enc == "resnet34" else f"UNet-{enc} x2"
        methods[f"competition baseline ({label})"] = lambda i: baseline_restore(baseline, grays[i])

    rows, mask_iou, outputs = [], None, {}
    for name, fn in methods.items():
        preds = [fn(i) for i in tqdm(range(len(names)), desc=name, leave=False)]
        if name in (next(iter(methods)), "ours, order mask-inpaint-colorize"):  # for the hole-colour figure
            outputs[name] = preds
        table = utils.score_arrays(gts, preds, masks, names)
        ms = utils.median_ms(lambda fn=fn: fn(0), repeats=args.repeats, warmup=1)
        rows.append({"method": name, **utils.summarize(table), "ms_per_image": ms})
    pred_masks = [r.mask for r in restorer.restore_batch(grays)]
    stats = pd.DataFrame([utils.mask_stats(p, t) for p, t in zip(pred_masks, masks)])
    mask_iou = {k: float(stats[k].mean()) for k in ("iou", "precision", "recall")}

    if args.hole_figure:
        utils.plot_hole_colour(outputs, gts, masks, args.hole_figure)

    bs = max(1, min(args.batch_size, len(names)))
    speed = pd.DataFrame(
        [
            {
                "backend": b,
                "ms_per_image_batch1": utils.median_ms(lambda r=r: r.restore(grays[0]), repeats=args.repeats),
                f"ms_per_image_batch{bs}": utils.median_ms(
                    lambda r=r: r.restore_batch(grays[:bs]), repeats=args.repeats
                )
                / bs,
            }
            for b, r in restorers.items()
        ]
    ).set_index("backend")

    result = pd.DataFrame(rows).set_index("method")
    print(
        f"data: {data}   images: {len(names)}   weights: {weights}   device: {args.device}   "
        f"torch threads: {torch.get_num_threads()}"
    )
    print(result.round(4).to_string())
    print("\nwhole pipeline, per image (median of --repeats after a warm-up):")
    print(speed.round(1).to_string())
    print("pipeline mask: " + "  ".join(f"{k} {v:.4f}" for k, v in mask_iou.items()))
    if args.hole_figure:
        print(f"hole-colour figure (ring vs hole chroma, ours against the truth): {args.hole_figure}")
    if base_info:
        print(f"competition baseline training: {base_info}")
    if args.json:
        utils.save_json(
            args.json,
            {
                "data": str(data),
                "images": len(names),
                "weights": str(weights),
                "threads": torch.get_num_threads(),
                "device": args.device,
                "results": result.round(5).to_dict(orient="index"),
                "mask": mask_iou,
                "pipeline_ms_per_image": speed.round(2).to_dict(orient="index"),
                "baseline_training": base_info,
                "colour": args.colour,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
