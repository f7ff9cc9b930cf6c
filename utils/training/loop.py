"""Training: the resumable epoch loop (`fit`) and the equal-budget comparison of options (`compare_options`).
Checkpoints live in utils.checkpoints, devices and autocast in utils.runtime."""
from __future__ import annotations

import gc
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from ..core.checkpoints import load_train_state, save_train_state
from ..core.train_config import changed_fields, config_class
from .ranks import sync_epoch


# ---------------------------------------------------------------- the loop
class SettingsChangedError(ValueError):
    """A resumed training run with other settings than its checkpoint's; the message names the file.
    `path` is the checkpoint's train state, `changes` {setting: (stored, now)} (for a caller's own advice)."""

    def __init__(self, message: str, path=None, changes: dict | None = None, lines: str = ""):
        super().__init__(message)
        self.path, self.changes, self.lines = path, dict(changes or {}), lines   # lines: the changes, as text


# the training data's settings that are compared (`data_settings`); its `data_dir` is stored for the record and
# shown, not compared: a dataset moved to another folder (a copy on a local disk, another mount point) is the same
# data, and `data` (its files' names and sizes) says so
DATA_KEYS = ("train_source", "data", "damage")


def legacy_fields(stage: str, settings: dict) -> dict:
    """The config fields that a train state without a config holds (its loss and loss weights, learning rates,
    networks, size, batch size, seed, init_weights), by their config names: a resumed run is compared on these,
    and the train state records the whole config from then on."""
    out = {}
    loss = settings.get("loss") or {}
    if "kind" in loss:
        out["loss"] = loss["kind"]
        parts = loss["kind"].split("+")
        if stage == "inpaint":
            out.update({"hole_weight": loss.get("hole_w")} if "hole_w" in loss else {})
            out.update({"ssim_weight": loss["ssim_w"]} if "mssim" in parts and "ssim_w" in loss else {})
            out.update({"gan_weight": loss["gan_w"]} if "gan" in parts and "gan_w" in loss else {})
        if stage == "color" and loss["kind"].startswith("classify"):
            out["rebalance_lambda"] = loss.get("rebalance_lambda", 0.5)    # stored only when it was not 0.5
    lrs = settings.get("lr") or {}
    for key, name in (("opt", "lr"), ("g", "lr"), ("d", "d_lr")):
        if lrs.get(key):
            out[name] = lrs[key][0]
    net = (settings.get("nets") or {}).get(stage, {}).get("kwargs", {})
    out.update({k: net[k] for k in ("encoder", "pretrained", "block") if k in net})
    if "size" in settings:
        out["image_size"] = settings["size"]
    out.update({k: settings[k] for k in ("batch_size", "seed") if k in settings})
    out["init_weights"] = settings.get("init_weights")          # stored only when set
    return out


def changed_settings(old: dict | None, new: dict, stage: str) -> dict:
    """{setting: (stored, now)} for the settings in which a resumed run differs from its checkpoint's: the compared
    fields of the stage's config (`utils.train_config`; a train state without one: `legacy_fields`),
    and the training data (`data_settings`: train_source, as the data set was built, and the files)."""
    if old is None:
        return {}
    cls = config_class(stage)
    stored = dict(old["config"]) if "config" in old else legacy_fields(stage, old)
    changes = changed_fields(stored, new["config"], cls)
    for k in DATA_KEYS:
        if k in old and k in new and old[k] != new[k]:
            changes[k] = (old[k], new[k])
        elif k in changes and k in new:      # the data set as built is what trained, whatever the config says
            changes.pop(k)
    return dict(sorted(changes.items()))


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

    from ..data.datasets import (
        InpaintDataset,
        JoinedDataset,
        PhotoCropDataset,
        ProvidedPairsDataset,
        SyntheticDamageDataset,
    )

    kinds, files, damages, todo = [], [], [], [train_ds]
    while todo:
        ds = todo.pop(0)
        if isinstance(ds, InpaintDataset):
            todo.append(ds.base)
        elif isinstance(ds, JoinedDataset):
            todo.extend(ds.parts)
        elif isinstance(ds, SyntheticDamageDataset):  # PhotoCropDataset is one too: its photos are cropped
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


# ---------------------------------------------------------------- the loader
def loader_workers(device, processes: int = 1) -> int:
    """Data-loader worker processes per training process (the config's num_workers None): on CUDA the CPU cores this
    process may use divided among the training processes (at most 8): the GPU computes while the workers decode,
    damage and resize the next batches; on the CPU one worker (two or more cores per process; else none), since the
    networks themselves compute on the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = max(1, cores // max(1, processes))
    if torch.device(device).type == "cuda":
        return min(8, per_process)
    return 1 if per_process >= 2 else 0


class EpochSampler(Sampler):
    """The items of a data set of `n` in an order shuffled afresh every epoch from (seed, epoch), as (epoch, index)
    pairs: the epoch travels with each index to the loader's workers, which keep their own copy of the data set
    for the whole run (persistent workers), so that item i of epoch e is the same item with workers or without."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter([(self.epoch, i) for i in torch.randperm(self.n, generator=g).tolist()])


class EpochItems(Dataset):
    """A data set indexed by EpochSampler's (epoch, index) pairs: it moves the wrapped data set (its copy in this
    process) to that epoch (`set_epoch`, which seeds its damage and crops) before returning the item."""

    def __init__(self, dataset):
        self.dataset, self.epoch = dataset, None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        if epoch != self.epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch
        return self.dataset[index]


def make_loader(train_ds, batch_size: int, num_workers: int, seed: int, device) -> DataLoader:
    """The loader of a whole training run: shuffled per epoch (`EpochSampler`, `set_epoch` on its sampler), its
    workers kept from epoch to epoch (persistent), batches in pinned memory on CUDA (the copy to the GPU then
    overlaps the computation)."""
    return DataLoader(
        EpochItems(train_ds),
        batch_size=batch_size,
        sampler=EpochSampler(len(train_ds), seed),
        num_workers=num_workers,
        drop_last=len(train_ds) >= batch_size,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=num_workers > 0,
    )


def _stop_workers(loader) -> None:
    """End a persistent loader's worker processes (and its pin-memory thread) now, not when the garbage collector
    finds the loader (an exception's traceback can hold it for long)."""
    it = getattr(loader, "_iterator", None)
    if hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()


def fit(
    stage,
    train_ds,
    epochs: int | None,
    ckpt_dir,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    steps_per_epoch: int | None = None,
    seed: int | None = None,
    resume: bool = True,
    val_fn=None,
    progress: bool = True,
    accelerator=None,
) -> list[dict]:
    """Train `stage` (see utils.stages) for `epochs`, validating with `val_fn(stage)` after each epoch and
    checkpointing (models + optimizer state) so that an interrupted run resumes from the last epoch.
    Returns the per-epoch history (losses, validation metrics, seconds, and the images trained on and images/s,
    loading included: what one epoch of a larger data set will cost; the precision, and in fp16 the steps that the
    gradient scaler skipped, `overflow_steps`). The options after `ckpt_dir` are keywords.

    `num_workers`: data-loader worker processes, or 'auto' (`loader_workers`: from the CPU cores and the device);
    they live for the whole run (persistent), and on CUDA the batches come in pinned memory.

    epochs, batch_size, num_workers, steps_per_epoch and seed: None takes the stage config's; a value given here
    replaces it in `stage.config`, which is saved with each checkpoint and compared when a run resumes (with the
    training data, `data_settings`; a mismatch raises SettingsChangedError naming the fields).

    `accelerator` (an accelerate.Accelerator; see utils.distributed, which also prepares the stage's nets for DDP):
    each process trains on its share of every epoch's batches (steps_per_epoch counts one process's steps), the
    ranks are synced after each epoch, and only the main process prints and writes the checkpoints."""
    given = {
        "epochs": epochs,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "steps_per_epoch": steps_per_epoch,
        "seed": seed,
    }
    stage.config = stage.config.replace(**{k: v for k, v in given.items() if v is not None})
    c = stage.config
    epochs, batch_size, num_workers, steps_per_epoch, seed = (
        c.epochs,
        c.batch_size,
        c.num_workers,
        c.steps_per_epoch,
        c.seed,
    )
    main = accelerator is None or accelerator.is_main_process
    progress = progress and main
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state_path = ckpt_dir / f"{stage.name}.train_state.pt"
    history, start = [], 0
    settings = {"config": c.to_dict(), **data_settings(train_ds)}
    settings = json.loads(json.dumps(settings, default=str))  # as it is stored
    if resume and (st := load_train_state(state_path)) is not None:
        changed = changed_settings(st.get("settings"), settings, stage.name)
        if changed:
            lines = "; ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            if "data" in changed:  # which folders held the two
                lines += f" (data folder {st['settings'].get('data_dir')} -> {settings.get('data_dir')})"
            raise SettingsChangedError(
                f"{state_path}: this checkpoint was trained with other settings ({lines}); resuming would mix "
                "them. Use another checkpoint folder for the new settings (ckpt_dir), or train from scratch over "
                f"it (fit(..., resume=False), or delete {state_path.name})",
                path=state_path,
                changes=changed,
                lines=lines,
            )
        stage.load_state(st, ckpt_dir)
        history, start = st["history"], st["epoch"] + 1
        if start < epochs and progress:
            print(f"resuming {stage.name} from epoch {start} ({state_path})")
    if num_workers is None:  # from the core count
        num_workers = loader_workers(stage.device, accelerator.num_processes if accelerator is not None else 1)
    loader = make_loader(train_ds, batch_size, num_workers, seed, stage.device) if start < epochs else None
    if accelerator is not None and loader is not None:
        loader = accelerator.prepare_data_loader(loader)  # this process's share of the batches
    try:
        for epoch in range(start, epochs):
            lr_factor = stage.schedule_lr(epoch, epochs)
            record = _epoch(stage, train_ds, loader, epoch, epochs, steps_per_epoch, start, batch_size, progress)
            record["lr_factor"] = round(lr_factor, 6)
            if accelerator is not None:  # same buffers and record on every rank; images of all ranks
                record = sync_epoch(accelerator, stage, record)
            if val_fn is not None:
                stage.eval_mode()
                record.update(val_fn(stage))
            history.append(record)
            if main:
                stage.save(ckpt_dir, extra={"epoch": epoch + 1, "history": history})
                save_train_state(
                    state_path, {**stage.state(), "epoch": epoch, "history": history, "settings": settings}
                )
            if accelerator is not None:
                accelerator.wait_for_everyone()  # the checkpoint is written before any rank goes on
            if progress:
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()})
    finally:  # the workers end with the run (in a Jupyter kernel, idle ones would pile up, each with the data)
        if loader is not None:
            _stop_workers(loader)
        del loader
        gc.collect()
    return history


def _epoch(
    stage, train_ds, loader, epoch: int, epochs: int, steps_per_epoch, start: int, batch_size: int, progress: bool
) -> dict:
    """Train one epoch; its record (before the ranks' records are joined and validation is added)."""
    if hasattr(train_ds, "set_epoch"):
        train_ds.set_epoch(epoch)
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)  # accelerate's loader passes it on to the EpochSampler
    else:
        loader.sampler.set_epoch(epoch)
    n_steps = min(len(loader), steps_per_epoch or len(loader))
    if steps_per_epoch and steps_per_epoch > len(loader) and epoch == start:
        warnings.warn(
            f"{stage.name}: steps_per_epoch={steps_per_epoch} is more than the {len(loader)} batches of "
            f"{len(train_ds)} images at batch size {batch_size}; an epoch is {len(loader)} steps",
            stacklevel=3,
        )
    stage.train_mode()
    sums, count, skipped, images, t0 = {}, 0, 0, 0, time.time()
    overflows = getattr(stage, "overflow_steps", 0)
    bar = tqdm(
        loader, total=n_steps, desc=f"{stage.name} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
    )
    for i, batch in enumerate(bar):
        if i >= n_steps:
            break
        images += batch_images(batch)
        logs = stage.train_step(batch)
        if logs is None:  # the NaN guard skipped this step
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
    record = {
        "epoch": epoch + 1,
        "train_seconds": round(seconds, 1),
        "skipped_steps": skipped,
        "images": images,
        "images_per_s": round(images / seconds, 3) if seconds > 0 else None,
    }
    if hasattr(stage, "precision"):
        record["precision"] = stage.precision
        if stage.precision == "fp16":
            record["overflow_steps"] = stage.overflow_steps - overflows
    record.update({f"train_{k}": v / max(count, 1) for k, v in sums.items()})
    return record


def compare_options(make_stage, options, train_ds, val_fn, steps: int, ckpt_root, seed: int) -> pd.DataFrame:
    """Train one fresh stage per option (`make_stage(option)`) for the same number of steps from the same initial
    weights (torch seeded with `seed`; the config's seed, which fit also takes from the stage) and validate each
    on the same set; one row per option. The batch size is each stage config's."""
    rows = []
    for opt in options:
        torch.manual_seed(seed)
        stage = make_stage(opt)
        hist = fit(
            stage,
            train_ds,
            epochs=1,
            ckpt_dir=Path(ckpt_root) / str(opt).replace("+", "_"),
            steps_per_epoch=steps,
            resume=False,
            val_fn=val_fn,
            progress=False,
        )
        rows.append(
            {
                "option": opt,
                **{k: v for k, v in hist[-1].items() if k.startswith("val_")},
                "train_seconds": hist[-1]["train_seconds"],
            }
        )
    return pd.DataFrame(rows).set_index("option")


def batch_images(batch) -> int:
    """The number of images in a collated batch (a dict of tensors, or a tensor / a tuple of them)."""
    first = (
        next(iter(batch.values()))
        if isinstance(batch, dict)
        else batch[0]
        if isinstance(batch, (list, tuple))
        else batch
    )
    return int(first.shape[0])


__all__ = [
    "EpochItems",
    "EpochSampler",
    "SettingsChangedError",
    "batch_images",
    "changed_settings",
    "compare_options",
    "data_settings",
    "fit",
    "loader_workers",
    "make_loader",
]
