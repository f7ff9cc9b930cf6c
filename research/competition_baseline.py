"""The competition's published baseline (two UNet-ResNet34 networks, gray
restore then colorize, L1 + MSE; it predicts every pixel, no mask, no luminance kept), trained on a time budget."""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from utils.core.checkpoints import load_train_state, save_train_state
from utils.core.runtime import autocast

BASELINE_IMPL = "smp"    # stored with its weights and training state: the in-house UNets before it are refused


class CompetitionBaseline(nn.Module):
    """The competition's published baseline: two segmentation_models_pytorch UNets (ResNet34 encoders), the first
    restores the gray image (fills the hole), the second colourises it; random init (no hub offline). An
    `encoder` that smp does not have itself is taken from timm (smp's `tu-` encoders, e.g. resnet10t for tests)."""

    def __init__(self, encoder: str = "resnet34"):
        super().__init__()
        import segmentation_models_pytorch as smp

        name = encoder if encoder in smp.encoders.get_encoder_names() else f"tu-{encoder}"
        self.encoder_name = encoder
        self.restore_net = smp.Unet(name, encoder_weights=None, in_channels=1, classes=1)
        self.color_net = smp.Unet(name, encoder_weights=None, in_channels=1, classes=3)

    def forward(self, gray):
        restored = torch.sigmoid(self.restore_net(gray * 2 - 1))
        return restored, torch.sigmoid(self.color_net(restored * 2 - 1))


def baseline_loss(restored, rgb_pred, clean_gray, rgb_true) -> torch.Tensor:
    """L1 + MSE on the restored gray and on the colour image, as the baseline trained."""
    return (F.l1_loss(restored, clean_gray) + F.mse_loss(restored, clean_gray)
            + F.l1_loss(rgb_pred, rgb_true) + F.mse_loss(rgb_pred, rgb_true))


def train_baseline(model: CompetitionBaseline, train_ds, minutes: float, batch_size: int = 8, lr: float = 1e-3,
                   device="cpu", amp: bool = False, progress: bool = True, state_path=None,
                   save_every_s: float = 300.0) -> dict:
    """Train for a budget of `minutes` on the same synthetic-damage data as our stages. Time is counted as
    this process's CPU time divided by torch's thread count: on an idle machine that is the wall time, and other
    work on the machine does not eat into the budget.

    With `state_path`, the model, optimizer, step count and time already spent are saved there every
    `save_every_s` seconds and at the end (atomically, loadable with weights_only=True); a later call with the
    same path resumes and only spends what is left of the budget."""
    device = torch.device(device)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    spent, steps, epoch, last = 0.0, 0, 0, float("nan")
    state = load_train_state(state_path) if state_path else None
    if state is not None:
        if state.get("impl") != BASELINE_IMPL:
            raise ValueError(f"{state_path}: the training state of an older baseline implementation (before "
                             "segmentation_models_pytorch); remove it or use another state path")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        spent, steps, epoch = float(state["spent_s"]), int(state["steps"]), int(state["epoch"])
        last = float(state.get("final_loss", last))

    def save():
        if state_path:
            save_train_state(
                state_path,
                {
                    "impl": BASELINE_IMPL,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "spent_s": spent,
                    "steps": steps,
                    "epoch": epoch,
                    "final_loss": last,
                },
            )

    budget = minutes * 60
    bar = tqdm(desc="baseline", unit="step", initial=steps, disable=not progress)
    threads = max(1, torch.get_num_threads())
    clock = (lambda: time.process_time() / threads) if device.type == "cpu" else time.time
    start, last_save = clock() - spent, time.time()
    while spent < budget:
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        for batch in DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=True):
            gray, rgb = batch["gray"].to(device), batch["rgb"].to(device)
            clean = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
            with autocast(device, "bf16" if amp else "off"):
                restored, pred = model(gray)
                loss = baseline_loss(restored.float(), pred.float(), clean, rgb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps, last = steps + 1, float(loss.detach())
            spent = clock() - start
            bar.update(1)
            bar.set_postfix(loss=f"{last:.4f}", min=f"{spent / 60:.1f}")
            if time.time() - last_save >= save_every_s:
                save()
                last_save = time.time()
            if spent >= budget:
                break
        else:
            epoch += 1
    save()
    bar.close()
    model.eval()
    return {
        "steps": steps,
        "minutes": round(spent / 60, 2),
        "budget_minutes": minutes,
        "final_loss": last,
        "batch_size": batch_size,
        "lr": lr,
        "threads": threads,
    }


@torch.inference_mode()
def baseline_restore(model: CompetitionBaseline, gray: np.ndarray, size: int = 256) -> np.ndarray:
    """uint8 HxW damaged gray -> uint8 HxWx3 (network output resized to the input size)."""
    h, w = gray.shape
    x = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    dev = next(model.parameters()).device
    _, rgb = model(torch.from_numpy(x)[None, None].to(dev))
    out = (rgb[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)


__all__ = ["BASELINE_IMPL", "CompetitionBaseline", "baseline_loss", "baseline_restore", "train_baseline"]
