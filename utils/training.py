"""Training: the resumable epoch loop (`fit`) and the equal-budget comparison of options (`compare_options`).
Checkpoints live in utils.checkpoints, devices and autocast in utils.runtime."""
from __future__ import annotations

import gc
import json
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import load_train_state, save_train_state
from .models import same_architecture
from .ranks import sync_epoch


# ---------------------------------------------------------------- the loop
class SettingsChangedError(ValueError):
    """A resumed training run with other settings than its checkpoint's; the message names the file.
    `path` is the checkpoint's train state, `changes` {setting: (stored, now)} (for a caller's own advice)."""

    def __init__(self, message: str, path=None, changes: dict | None = None, lines: str = ""):
        super().__init__(message)
        self.path, self.changes, self.lines = path, dict(changes or {}), lines   # lines: the changes, as text


# settings stored only when set (Stage.settings): a missing one means "none", so it is compared even when one side
# lacks it. Every other setting is compared only when the checkpoint stored it: older checkpoints lack the later
# ones (train_source, data_dir), and a key that an old checkpoint never recorded must not refuse its resume.
OPTIONAL_SETTINGS = ("init_weights",)
# stored for the record and shown, not compared: a dataset moved to another folder (a copy on a local disk, another
# mount point) is the same data; `data` (its files' names and sizes) is what is compared
INFO_SETTINGS = ("data_dir",)


def changed_settings(old: dict | None, new: dict) -> dict:
    """{setting: (stored, now)} for the settings in which a resumed run differs from its checkpoint's."""
    if old is None:
        return {}
    keys = ((old.keys() & new.keys()) | ((old.keys() | new.keys()) & set(OPTIONAL_SETTINGS))) - set(INFO_SETTINGS)

    def differ(k):
        a, b = old.get(k), new.get(k)
        if k == "nets" and isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            return not all(same_architecture(a[n], b[n]) for n in a)     # defaults spelled out or not
        return a != b

    return {k: (old.get(k), new.get(k)) for k in sorted(keys) if differ(k)}


def data_settings(train_ds) -> dict:
    """The training data that a resumed run must share with its checkpoint, besides the stage's settings:
    `train_source` ('synthetic', 'provided', 'both' or 'photos', from the kind of data set that
    utils.train_val_datasets built), `data`, a fingerprint of the training files (how many, and a hash of their
    names relative to the dataset folder and their sizes: the same data moved to another folder resumes, other
    data does not), and `data_dir`, that folder, resolved, for the record (the first folder at or above the files'
    common folder that holds a train.csv: the dataset; else that common folder, e.g. a folder of photos; not
    compared), and `damage`, the synthetic damage's settings (`utils.damage.DamageConfig`; absent without synthetic
    damage). {} for a data set of another kind (nothing to compare). `steps_per_epoch` is deliberately
    not among the settings: no schedule depends on it, so longer epochs (e.g. the full run after `make run`'s
    short sample runs) continue a run without mixing anything."""
    import hashlib
    import os

    from .datasets import (InpaintDataset, JoinedDataset, PhotoCropDataset, ProvidedPairsDataset,
                           SyntheticDamageDataset)

    kinds, files, damages, todo = [], [], [], [train_ds]
    while todo:
        ds = todo.pop(0)
        if isinstance(ds, InpaintDataset):
            todo.append(ds.base)
        elif isinstance(ds, JoinedDataset):
            todo.extend(ds.parts)
        elif isinstance(ds, SyntheticDamageDataset):       # PhotoCropDataset is one too: its photos are cropped
            kinds.append("photos" if isinstance(ds, PhotoCropDataset) else "synthetic")
            files += ds.paths
            damages.append(ds.damage.to_dict())
        elif isinstance(ds, ProvidedPairsDataset):
            kinds.append("provided")
            files += list(ds.table["input_image_path"]) + list(ds.table["gt_image_path"])
        else:
            return {}
    source = "both" if sorted(set(kinds)) == ["provided", "synthetic"] else "+".join(dict.fromkeys(kinds))
    out = {"train_source": source}
    if damages:
        out["damage"] = damages[0] if all(d == damages[0] for d in damages) else damages
    try:
        common = Path(os.path.commonpath(sorted({os.path.dirname(os.path.abspath(str(f))) for f in files}))).resolve()
    except ValueError:          # no files, or files on different drives: no folder to compare
        return out
    root = next((d for d in (common, *common.parents) if (d / "train.csv").is_file()), common)
    digest = hashlib.sha256()
    names = sorted({os.path.relpath(os.path.abspath(str(f)), root) for f in files})
    for name in names:
        size = (root / name).stat().st_size if (root / name).is_file() else -1
        digest.update(f"{name}\0{size}\n".encode())
    out["data"] = f"{len(names)} files, {digest.hexdigest()[:16]}"
    out["data_dir"] = str(root)
    return out


def fit(stage, train_ds, epochs: int, ckpt_dir, *, batch_size: int = 8, num_workers: int = 0,
        steps_per_epoch: int | None = None, resume: bool = True, val_fn=None, seed: int = 0,
        progress: bool = True, accelerator=None) -> list[dict]:
    """Train `stage` (see utils.stages) for `epochs`, validating with `val_fn(stage)` after each epoch and
    checkpointing (models + optimizer state) so that an interrupted run resumes from the last epoch.
    Returns the per-epoch history (losses, validation metrics, seconds, and the images trained on and images/s,
    loading included: what one epoch of a larger data set will cost). The options after `ckpt_dir` are keywords.

    `accelerator` (an accelerate.Accelerator; see utils.distributed, which also prepares the stage's nets for DDP):
    each process trains on its share of every epoch's batches (steps_per_epoch counts one process's steps), the
    ranks are synced after each epoch, and only the main process prints and writes the checkpoints."""
    main = accelerator is None or accelerator.is_main_process
    progress = progress and main
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state_path = ckpt_dir / f"{stage.name}.train_state.pt"
    history, start = [], 0
    settings = {**stage.settings(), "batch_size": batch_size, "seed": seed, **data_settings(train_ds)}
    settings = json.loads(json.dumps(settings, default=str))     # as it is stored
    if resume and (st := load_train_state(state_path)) is not None:
        changed = changed_settings(st.get("settings"), settings)
        if changed:
            lines = "; ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            if "data" in changed:       # which folders held the two
                lines += f" (data folder {st['settings'].get('data_dir')} -> {settings.get('data_dir')})"
            raise SettingsChangedError(
                f"{state_path}: this checkpoint was trained with other settings ({lines}); resuming would mix "
                "them. Use another checkpoint folder for the new settings (ckpt_dir), or train from scratch over "
                f"it (fit(..., resume=False), or delete {state_path.name})", path=state_path, changes=changed, lines=lines)
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


__all__ = ["SettingsChangedError", "batch_images", "changed_settings", "compare_options", "data_settings", "fit"]
