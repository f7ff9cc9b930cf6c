"""Evaluation: each stage on its validation set (the `val_fn` of utils.loop.fit), one batch iterator, timings
and a stage's summary file."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.files import save_json
from ..core.metric import score_image
from ..inference.color import compose_rgb
from ..inference.mask_refine import mask_stats, refine_mask
from ..inference.pipeline import colorize_chroma, inpaint, mask_probability
from ..inference.prefills import gray_copy, prefill


def sample_batches(ds, batch_size: int = 8, progress: bool = False, desc: str = "validation"):
    """The items of a validation set (its `sample(i)`: uint8 arrays at full size) as lists of `batch_size`."""
    starts = range(0, len(ds), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        yield [ds.sample(i) for i in range(start, min(start + batch_size, len(ds)))]


def mean_terms(rows, keys=("score", "ssim", "masked_ssim", "hue"), prefix: str = "") -> dict:
    """The mean of each score term over a list of `score_image` results."""
    return {f"{prefix}{k}": float(np.mean([r[k] for r in rows])) for k in keys}


def validate_mask(stage, val_ds, batch_size: int = 8) -> dict:
    """A MaskStage's raw (thresholded network) and refined mask IoU / precision / recall at full size."""
    raw, ref = [], []
    for samples in sample_batches(val_ds, batch_size):
        probs = mask_probability(stage.net, [s["gray"] for s in samples], stage.size)
        for s, p in zip(samples, probs):
            raw.append(mask_stats(p > 0.5, s["mask"]))
            ref.append(mask_stats(refine_mask(s["gray"], p, stage.refine), s["mask"]))
    out = {f"val_{k}_raw": float(np.mean([r[k] for r in raw])) for k in ("iou", "precision", "recall")}
    out.update({f"val_{k}": float(np.mean([r[k] for r in ref])) for k in ("iou", "precision", "recall")})
    out["val_min_recall"] = float(min(r["recall"] for r in ref))
    return out


def validate_color(stage, val_ds, batch_size: int = 8) -> dict:
    """A ColorStage on its own: predicted chroma on the true luminance, scored with the competition metric."""
    rows = []
    for samples in sample_batches(val_ds, batch_size):
        chroma = colorize_chroma(stage.net, [s["gray"] for s in samples], [s["mask"] for s in samples], stage.size)
        rows += [score_image(s["rgb"], compose_rgb(s["clean_gray"], c), s["mask"]) for s, c in zip(samples, chroma)]
    return mean_terms(rows, ("hue", "score", "ssim", "masked_ssim"), "val_")


def validate_inpaint(stage, val_ds, batch_size: int = 8) -> dict:
    """An InpaintStage's masked SSIM (the metric's, on the gray image as RGB) and score on the validation holes at full
    resolution, against its pre-fill alone (the config's `prefill`) on the same holes (`_prefill`)."""
    rows = {"": [], "_prefill": []}
    method = stage.config.prefill
    for samples in sample_batches(val_ds, batch_size):
        truth = [gray_copy(s["clean_gray"]) for s in samples]
        outs = inpaint(stage.net, [s["clean_gray"] for s in samples], [s["mask"] for s in samples],
                       prefill_method=method)
        for s, t, o in zip(samples, truth, outs):
            rows[""].append(score_image(t, gray_copy(o), s["mask"]))
            pre = prefill(s["clean_gray"], s["mask"], method)
            rows["_prefill"].append(score_image(t, gray_copy(pre), s["mask"]))
    out = {}
    for suffix, rs in rows.items():
        out[f"val_masked_ssim{suffix}"] = float(np.mean([r["masked_ssim"] for r in rs]))
        out[f"val_score{suffix}"] = float(np.mean([r["score"] for r in rs]))
    return out


def median_ms(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in milliseconds, after warm-up runs, in this process."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def stage_summary(stage: str, history: list[dict], ckpt_dir, loss: str, device, ms_per_image: float,
                  comparison: pd.DataFrame | None = None, metrics: dict | None = None, **extra) -> dict:
    """What a training notebook ends with: the last epoch's validation metrics (or `metrics`), the time per
    image, the training time, the loss and its comparison; written to `<ckpt_dir>/<stage>_metrics.json`
    (the model card reads it) and returned."""
    if metrics is None:
        metrics = {k: v for k, v in history[-1].items() if k.startswith("val_")}
    summary = {**metrics, "ms_per_image": ms_per_image, "device": str(device),
               "train_seconds": sum(h["train_seconds"] for h in history), "loss": loss, **extra}
    if comparison is not None:
        summary["loss_comparison"] = comparison.round(4).to_dict(orient="index")
    save_json(Path(ckpt_dir) / f"{stage}_metrics.json", summary)
    return summary


__all__ = ["mean_terms", "median_ms",
           "sample_batches", "stage_summary", "validate_color", "validate_inpaint", "validate_mask"]
