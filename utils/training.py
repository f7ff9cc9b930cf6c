"""Training helpers: device and autocast, checkpoints (safetensors + JSON), a resumable epoch loop."""
from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .imageio import atomic_path, write_bytes_atomic
from .models import build_model
from .weights import read_config, write_checksums


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but CUDA is not available")
    return torch.device(name)


def default_amp(device: torch.device) -> bool:
    """bf16 autocast on CUDA; fp32 on CPU, where it measured faster for these depthwise-conv nets
    (with the glibc malloc tunables: mask step 1.42 s fp32 vs 1.96 s bf16, batch 8 at 256 px, 2 cores)."""
    return torch.device(device).type == "cuda"


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CPU and CUDA (CPU training 1.7x faster); a no-op when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


# ---------------------------------------------------------------- checkpoints
def save_model(model: torch.nn.Module, config: dict, path_stem) -> Path:
    """Write `<stem>.safetensors` (weights) and `<stem>.json` (config), each atomically."""
    stem = Path(path_stem)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))
    write_bytes_atomic(stem.with_suffix(".json"), json.dumps(config, indent=2, default=str).encode())
    write_checksums(stem.parent)       # the folder's checksums.json covers what was just written
    return stem.with_suffix(".safetensors")


def load_model(path_stem, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Load `<stem>.json` + `<stem>.safetensors` (no pickle involved)."""
    stem = Path(path_stem)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    cfg_path, w_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: checkpoint file not found")
    config = read_config(cfg_path)
    model = build_model(config)
    try:
        model.load_state_dict(load_file(str(w_path), device="cpu"))
    except Exception as e:
        raise ValueError(f"{w_path}: weights do not fit the config in {cfg_path.name} ({e})") from e
    return model.to(device).eval(), config


def update_inference_config(path_stem, **options) -> dict:
    """Set inference options (e.g. chroma_gain) in a checkpoint's JSON config, atomically."""
    cfg_path = Path(path_stem).with_suffix(".json")
    config = read_config(cfg_path)
    config.setdefault("inference", {}).update(options)
    write_bytes_atomic(cfg_path, json.dumps(config, indent=2, default=str).encode())
    if (cfg_path.parent / "checksums.json").is_file():
        write_checksums(cfg_path.parent)
    return config


def save_train_state(path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_train_state(path) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


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
        changed = {k: (st["settings"].get(k), v) for k, v in settings.items()
                   if "settings" in st and st["settings"].get(k) != v}
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


def batch_images(batch) -> int:
    """The number of images in a collated batch (a dict of tensors, or a tensor / a tuple of them)."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0] if isinstance(batch, (list, tuple)) else batch
    return int(first.shape[0])


def is_finite(*values: torch.Tensor) -> bool:
    return all(math.isfinite(float(v.detach())) for v in values)
