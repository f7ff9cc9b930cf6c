"""The competition's published baseline architecture, as a reference for the benchmark: two smp-style
UNet-ResNet34 networks, the first restores the gray image (fills the hole), the second colourises it;
L1 + MSE loss on both outputs. It predicts every pixel (no mask, no luminance kept)."""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .models import UNet
from .training import autocast


class CompetitionBaseline(nn.Module):
    def __init__(self, encoder: str = "resnet34", pretrained: str = "none"):
        super().__init__()
        dec = (256, 128, 64, 32, 16)  # smp's UNet decoder channels
        self.restore_net = UNet(1, 1, encoder, dec, pretrained)
        self.color_net = UNet(1, 3, encoder, dec, pretrained)

    def forward(self, gray):
        restored = torch.sigmoid(self.restore_net(gray * 2 - 1))
        return restored, torch.sigmoid(self.color_net(restored * 2 - 1))


def baseline_loss(restored, rgb_pred, clean_gray, rgb_true) -> torch.Tensor:
    """L1 + MSE on the restored gray and on the colour image, as the baseline trained."""
    return (F.l1_loss(restored, clean_gray) + F.mse_loss(restored, clean_gray)
            + F.l1_loss(rgb_pred, rgb_true) + F.mse_loss(rgb_pred, rgb_true))


def train_baseline(model: CompetitionBaseline, train_ds, minutes: float, batch_size: int = 8, lr: float = 1e-3,
                   device="cpu", amp: bool = False, progress: bool = True) -> dict:
    """Train for a wall-clock budget (minutes) on the same synthetic-damage data as our stages."""
    device = torch.device(device)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    deadline, steps, epoch, last = time.time() + minutes * 60, 0, 0, float("nan")
    bar = tqdm(desc="baseline", unit="step", disable=not progress)
    while time.time() < deadline:
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        for batch in DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=True):
            gray, rgb = batch["gray"].to(device), batch["rgb"].to(device)
            clean = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
            with autocast(device, amp):
                restored, pred = model(gray)
                loss = baseline_loss(restored.float(), pred.float(), clean, rgb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps, last = steps + 1, float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{last:.4f}")
            if time.time() >= deadline:
                break
        epoch += 1
    bar.close()
    model.eval()
    return {"steps": steps, "minutes": minutes, "final_loss": last}


@torch.inference_mode()
def baseline_restore(model: CompetitionBaseline, gray: np.ndarray, size: int = 256) -> np.ndarray:
    """uint8 HxW damaged gray -> uint8 HxWx3 (network output resized to the input size)."""
    h, w = gray.shape
    x = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    dev = next(model.parameters()).device
    _, rgb = model(torch.from_numpy(x)[None, None].to(dev))
    out = (rgb[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
