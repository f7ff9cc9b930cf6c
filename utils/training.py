"""Training: the resumable epoch loop (`fit`) and the equal-budget comparison of options (`compare_options`).
Checkpoints live in utils.checkpoints, devices and autocast in utils.runtime."""
from __future__ import annotations

import gc
import json
import math
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import load_train_state, save_train_state


# ---------------------------------------------------------------- the loop
class SettingsChangedError(ValueError):
    """A resumed training run with other settings than its checkpoint's; the message names the file."""


def fit(stage, train_ds, epochs: int, ckpt_dir, batch_size: int = 8, num_workers: int = 0,
        steps_per_epoch: int | None = None, resume: bool = True, val_fn=None, seed: int = 0,
        progress: bool = True, accelerator=None) -> list[dict]:
    """Train `stage` (see utils.stages) for `epochs`, validating with `val_fn(stage)` after each epoch and
    checkpointing (models + optimizer state) so that an interrupted run resumes from the last epoch.
    Returns the per-epoch history (losses, validation metrics, seconds, and the images trained on and images/s,
    loading included: what one epoch of a larger data set will cost).

    `accelerator` (an accelerate.Accelerator; see utils.distributed, which also prepares the stage's nets for DDP):
    each process trains on its share of every epoch's batches (steps_per_epoch counts one process's steps), the
    ranks are synced after each epoch, and only the main process prints and writes the checkpoints."""
    main = accelerator is None or accelerator.is_main_process
    progress = progress and main
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state_path = ckpt_dir / f"{stage.name}.train_state.pt"
    history, start = [], 0
    settings = {**stage.settings(), "batch_size": batch_size, "seed": seed}
    settings = json.loads(json.dumps(settings, default=str))     # as it is stored
    if resume and (st := load_train_state(state_path)) is not None:
        old = st.get("settings")
        changed = {} if old is None else {k: (old.get(k), settings.get(k)) for k in {**old, **settings}
                                          if old.get(k) != settings.get(k)}
        if changed:
            lines = "; ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            raise SettingsChangedError(
                f"{state_path}: this checkpoint was trained with other settings ({lines}); resuming would mix "
                "them. Use another ckpt_dir for the new settings, or resume=False to train from scratch over it")
        stage.load_state(st, ckpt_dir)
        history, start = st["history"], st["epoch"] + 1
        if start < epochs and progress:
            print(f"resuming {stage.name} from epoch {start} ({state_path})")
    for epoch in range(start, epochs):
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                            drop_last=len(train_ds) >= batch_size, generator=g, persistent_workers=False)
        if accelerator is not None:
            loader = accelerator.prepare_data_loader(loader)     # this process's share of the batches
            loader.set_epoch(epoch)     # else accelerate's loader sets the data set back to epoch 0 when iterated
        n_steps = min(len(loader), steps_per_epoch or len(loader))
        if steps_per_epoch and steps_per_epoch > len(loader) and epoch == start:
            warnings.warn(f"{stage.name}: steps_per_epoch={steps_per_epoch} is more than the {len(loader)} batches of "
                          f"{len(train_ds)} images at batch size {batch_size}; an epoch is {len(loader)} steps",
                          stacklevel=2)
        stage.train_mode()
        sums, count, skipped, images, t0 = {}, 0, 0, 0, time.time()
        bar = tqdm(loader, total=n_steps, desc=f"{stage.name} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for i, batch in enumerate(bar):
            if i >= n_steps:
                break
            images += batch_images(batch)
            logs = stage.train_step(batch)
            if logs is None:            # the NaN guard skipped this step
                skipped += 1
                if skipped > max(3, n_steps // 4):
                    raise FloatingPointError(f"{stage.name}: too many non-finite losses ({skipped}); stopping")
                continue
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "g_loss", "d_loss")})
        seconds = time.time() - t0
        bar.close()
        # the epoch's loader iterator and its worker go now, before the next epoch forks a new worker: left to the
        # cyclic garbage collector, old iterators were copied into later workers ("can only test a child process")
        # and idle workers of finished epochs piled up in a Jupyter kernel (each holding the data set's memory)
        del bar, loader
        gc.collect()
        record = {"epoch": epoch + 1, "train_seconds": round(seconds, 1), "skipped_steps": skipped, "images": images,
                  "images_per_s": round(images / seconds, 3) if seconds > 0 else None}
        record.update({f"train_{k}": v / max(count, 1) for k, v in sums.items()})
        if accelerator is not None:                 # same buffers and record on every rank; images of all ranks
            from .distributed import sync_epoch
            record = sync_epoch(accelerator, stage, record)
        if val_fn is not None:
            stage.eval_mode()
            record.update(val_fn(stage))
        history.append(record)
        if main:
            stage.save(ckpt_dir, extra={"epoch": epoch + 1, "history": history})
            save_train_state(state_path, {**stage.state(), "epoch": epoch, "history": history, "settings": settings})
        if accelerator is not None:
            accelerator.wait_for_everyone()         # the checkpoint is written before any rank goes on
        if progress:
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()})
    return history


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


def batch_images(batch) -> int:
    """The number of images in a collated batch (a dict of tensors, or a tensor / a tuple of them)."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0] if isinstance(batch, (list, tuple)) else batch
    return int(first.shape[0])


def is_finite(*values: torch.Tensor) -> bool:
    return all(math.isfinite(float(v.detach())) for v in values)


__all__ = ["SettingsChangedError", "batch_images", "compare_options", "fit", "is_finite"]
