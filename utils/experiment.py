"""Notebook plumbing shared by the training notebooks: data set-up, loss comparisons, timings."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .damage import DamageConfig
from .data import JoinedDataset, ProvidedPairsDataset, SyntheticDamageDataset, load_train_table, resolve_data_dir, split_indices
from .imageio import write_bytes_atomic
from .sample_data import ensure_dataset
from .training import default_amp, fit, pick_device  # noqa: F401 (default_amp re-exported)


def setup(data_dir=None, device: str = "auto", seed: int = 0, val_fraction: float = 0.1, max_train: int | None = None,
          max_val: int | None = None) -> dict:
    """Resolve the data dir (building the sample dataset if none is there), pick the device, split the
    ground-truth photos into train and validation. Returns a dict of what the notebook needs (`train_table`:
    the train split's rows of train.csv, for training on the provided pairs)."""
    data_dir = ensure_dataset(resolve_data_dir(data_dir))
    table = load_train_table(data_dir)
    tr, va = split_indices(len(table), val_fraction, seed)
    gts = list(table["gt_image_path"])
    train_paths = [gts[i] for i in tr][:max_train]
    val_paths = [gts[i] for i in va][:max_val]
    train_table = table.iloc[tr][:max_train].reset_index(drop=True)
    dev = pick_device(device)
    torch.manual_seed(seed)
    return {"data_dir": data_dir, "device": dev, "train_paths": train_paths, "val_paths": val_paths, "table": table,
            "train_table": train_table}


TRAIN_SOURCES = ("synthetic", "provided", "both")


def datasets(train_paths, val_paths, size: int, seed: int = 0, damage: DamageConfig | None = None,
             train_style_share: float = 0.1, repeats: int = 1, train_source: str = "synthetic",
             train_table: pd.DataFrame | None = None):
    """The training set and a fixed validation set with test-style polygon damage only.

    train_source: 'synthetic' (on-the-fly polygon damage, plus a share of train-style holes, drawn on the
    ground truths `train_paths`, each `repeats` times an epoch), 'provided' (the data set's own
    train_input/train_gt pairs, the rows of `train_table`; mask target = the pixels where the input differs
    from the ground truth's gray), or 'both' (the two one after the other)."""
    if train_source not in TRAIN_SOURCES:
        raise ValueError(f"train_source must be one of {TRAIN_SOURCES}, got {train_source!r}")
    parts = []
    if train_source in ("synthetic", "both"):
        train_damage = damage or DamageConfig(train_style_share=train_style_share)
        parts.append(SyntheticDamageDataset(train_paths, train_damage, size=size, seed=seed, repeats=repeats))
    if train_source in ("provided", "both"):
        if train_table is None:
            raise ValueError(f"train_source={train_source!r} needs train_table (the train split's rows of train.csv)")
        parts.append(ProvidedPairsDataset(train_table, size=size, augment=True, seed=seed))
    train = parts[0] if len(parts) == 1 else JoinedDataset(*parts)
    val = SyntheticDamageDataset(val_paths, DamageConfig(), size=size, fixed=True, seed=seed + 1)
    return train, val


def compare_options(make_stage, options, train_ds, val_fn, steps: int, ckpt_root, batch_size: int = 8,
                    seed: int = 0) -> pd.DataFrame:
    """Train one fresh stage per option for the same number of steps from the same seed and validate
    each on the same set; one row per option."""
    rows = []
    for opt in options:
        torch.manual_seed(seed)
        stage = make_stage(opt)
        hist = fit(stage, train_ds, epochs=1, ckpt_dir=Path(ckpt_root) / str(opt).replace("+", "_"),
                   batch_size=batch_size, steps_per_epoch=steps, resume=False, val_fn=val_fn, seed=seed, progress=False)
        rows.append({"option": opt, **{k: v for k, v in hist[-1].items() if k.startswith("val_")},
                     "train_seconds": hist[-1]["train_seconds"]})
    return pd.DataFrame(rows).set_index("option")


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


def save_json(path, obj) -> None:
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        return str(o)
    write_bytes_atomic(path, json.dumps(obj, indent=2, default=default).encode())
